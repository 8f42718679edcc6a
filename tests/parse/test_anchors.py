"""Slugs as Sphinx, MyST and GitHub/Docusaurus make them."""

from __future__ import annotations

from ragline.parse.anchors import AnchorRegistry, github_slug, myst_id, slugify, sphinx_id


def test_sphinx_ids_follow_docutils() -> None:
    assert sphinx_id("Serve Config Files (`serve build`)") == "serve-config-files-serve-build"
    assert sphinx_id("ray.init and user_config") == "ray-init-and-user-config"
    assert sphinx_id("1. Getting started") == "getting-started"  # ids cannot start with a digit


def test_myst_ids_drop_quotes_like_smartquotes_do() -> None:
    assert myst_id("Using Ray's logger") == "using-rays-logger"
    assert sphinx_id("Using Ray's logger") == "using-ray-s-logger"
    assert slugify("What's Next?", "sphinx", markdown=True) == "whats-next"


def test_github_slugs_keep_underscores_and_do_not_collapse() -> None:
    assert github_slug("ray.init and user_config") == "rayinit-and-user_config"
    assert github_slug("Basic example: prompt + model + output parser") == "basic-example-prompt--model--output-parser"
    assert github_slug("1. Prompt") == "1-prompt"
    assert github_slug("Émoji 🦜 Ünïcode") == "émoji--ünïcode"


def test_registry_numbers_repeats_and_avoids_reserved_ids() -> None:
    registry = AnchorRegistry()
    assert registry.unique("lcel") == "lcel"
    assert registry.unique("lcel") == "lcel-1"
    registry.reserve("setup-1")
    assert registry.unique("setup") == "setup"
    assert registry.unique("setup") == "setup-2"
    assert "setup-1" in registry
