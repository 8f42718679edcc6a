"""reStructuredText and MyST on the Ray docs: every file parses, no markup leaks, anchors are Sphinx's."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from ragline.config import ParseSettings
from ragline.parse import kind_for, parse_bytes
from ragline.parse import rst as rst_module
from ragline.parse.rst import parse_rst, rst_to_text
from ragline.parse.sphinx import xref_text
from ragline.records import Document

SETTINGS = ParseSettings()
LEAKS = re.compile(r":ref:`|\.\. note::|```\{|:::\{|\{ref\}`|:(?:py:)?(?:class|meth|func|doc):`|\.\. tab-set::")
# Markup that is content: pages teaching how to write Ray docs show it in code examples, and one
# notebook's code cell has a docstring written in MyST.
MARKUP_IN_CODE = {
    "ray-contribute/docs.ipynb",
    "ray-contribute/writing-code-snippets.rst",
    "ray-contribute/getting-involved.rst",
    "tune/examples/tune-serve-integration-mnist.ipynb",
}


def _parse_file(path: Path) -> Document:
    kind = kind_for(path)
    assert kind is not None, path
    return parse_bytes(path.read_bytes(), source=path.as_uri(), kind=kind, settings=SETTINGS, path=str(path))


@pytest.fixture(scope="module")
def ray_docs(corpora: Path) -> Path:
    return corpora / "ray-docs"


@pytest.fixture(scope="module")
def ray_parsed(ray_docs: Path) -> dict[str, Document]:
    files = sorted(p for p in ray_docs.rglob("*") if p.is_file() and kind_for(p) is not None)
    return {p.relative_to(ray_docs).as_posix(): _parse_file(p) for p in files}


def test_every_ray_doc_parses(ray_parsed: dict[str, Document]) -> None:
    kinds = {name.rsplit(".", 1)[-1] for name in ray_parsed}
    assert len(ray_parsed) == 544 and kinds == {"rst", "md", "ipynb", "txt"}
    with_text = [name for name, doc in ray_parsed.items() if doc.sections]
    # The rest are title-only pages: toctrees, literalinclude wrappers, include snippets.
    assert len(with_text) >= 470


def test_no_sphinx_markup_leaks_anywhere(ray_parsed: dict[str, Document]) -> None:
    leaks = [
        (name, section.anchor, match.group(0))
        for name, doc in ray_parsed.items()
        if name not in MARKUP_IN_CODE
        for section in doc.sections
        for match in LEAKS.finditer(f"{section.title}\n{section.text}")
    ]
    assert leaks == []


def test_docs_about_docs_keep_their_examples(ray_parsed: dict[str, Document]) -> None:
    # The markup is the content there: it must survive as code, not be eaten.
    assert "```{code-cell} python3" in ray_parsed["ray-contribute/docs.ipynb"].text
    assert ".. testcode::" in ray_parsed["ray-contribute/writing-code-snippets.rst"].text


def test_named_actors_rst(ray_parsed: dict[str, Document], corpora: Path) -> None:
    doc = ray_parsed["ray-core/actors/named-actors.rst"]
    assert doc.kind == "rst" and doc.title == "Named Actors"
    assert [(s.anchor, s.level) for s in doc.sections] == [
        ("named-actors", 1),
        ("get-or-create-a-named-actor", 2),
        ("actor-lifetimes", 2),  # a title-derived id, also used as an explicit label here
    ]
    assert "unique name within their namespace." in doc.text  # :ref:`namespace <namespaces-guide>`
    # Tab labels and code from tab-set / tab-item / code-block survive.
    assert "Python\nimport ray\n\n@ray.remote\nclass Counter:" in doc.text
    html = (corpora / "ray-html-2023-06/docs.ray.io/en/master/ray-core/actors/named-actors.html").read_text()
    assert all(f'<section id="{s.anchor}">' in html for s in doc.sections)


def test_myst_markdown_anchors(ray_parsed: dict[str, Document]) -> None:
    serve = ray_parsed["serve/configure-serve-deployment.md"]
    anchors = [s.anchor for s in serve.sections]
    assert "serve-configure-deployment" not in serve.text  # the (label)= target line
    assert "overriding-deployment-settings" in anchors
    # Sphinx ids turn "_" into "-" (a GitHub slug would keep "user_config").
    assert "dynamically-changing-parameters-without-restarting-your-replicas-user-config" in anchors
    logging = [s.anchor for s in ray_parsed["ray-observability/user-guides/configure-logging.md"].sections]
    assert "using-rays-logger" in logging  # MyST smart quotes: "Ray's" -> "rays"


def test_autosummary_and_autoclass_keep_api_names(ray_parsed: dict[str, Document]) -> None:
    core = ray_parsed["ray-core/api/core.rst"]
    assert core.sections[0].text.split("\n")[:2] == ["ray.init", "ray.shutdown"]
    assert "ray.rllib.models.tf.tf_modelv2.TFModelV2" in ray_parsed["rllib/rllib-models.rst"].text


def test_click_commands_are_sections_named_by_their_program(ray_parsed: dict[str, Document], corpora: Path) -> None:
    cli = ray_parsed["ray-core/api/cli.rst"]
    stack = next(s for s in cli.sections if s.title == "ray stack")
    assert stack.anchor == "ray-stack" and stack.text == "ray stack"
    assert {"ray memory", "ray timeline", "ray status", "ray debug"} <= {s.title for s in cli.sections}
    html = (corpora / "ray-html-2023-06/docs.ray.io/en/master/ray-core/api/cli.html").read_text(encoding="utf-8")
    assert 'id="ray-stack"' in html  # the rendered page has the same anchor


def test_anchors_agree_with_the_rendered_site(corpora: Path) -> None:
    """Most section anchors from the sources exist as ids in the real docs.ray.io pages.

    Not all: the HTML is two months older than the sources and was built with an older docutils
    (repeated titles got "id1" there, "-1" now).
    """
    total = found = 0
    for line in (corpora / "ray-eval/url_to_doc_source.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row.get("kind") != "source" or not row.get("html_2023_06"):
            continue
        source, html = corpora / "ray-docs" / row["doc_source_path"], corpora / row["html_2023_06"]
        if not source.exists() or not html.exists():
            continue
        ids = set(re.findall(r'\bid="([^"]+)"', html.read_text(encoding="utf-8")))
        anchors = [s.anchor for s in _parse_file(source).sections if s.anchor]
        total += len(anchors)
        found += sum(a in ids for a in anchors)
    assert total > 800
    assert found / total > 0.93


# ----------------------------------------------------------------------------- rules, on small texts


@pytest.mark.parametrize(
    ("text", "role", "shown"),
    [
        ("Text <target>", "ref", "Text"),
        ("target-label", "ref", "target-label"),
        ("~ray.serve.Deployment", "class", "Deployment"),
        ("ray.serve.Deployment", "py:class", "ray.serve.Deployment"),
        ("!ray.init", "func", "ray.init"),
        ("<ray.get>", "func", "ray.get"),
        ("rocket", "octicon", ""),
    ],
)
def test_xref_text(text: str, role: str, shown: str) -> None:
    assert xref_text(text, role) == shown


def test_sphinx_directives_and_roles_on_plain_docutils() -> None:
    text = """:orphan:

.. _top-label:

Top Title
=========

Intro with :ref:`a ref <somewhere>`, :py:meth:`~ray.actor.ActorHandle.options` and :doc:`/serve/index`.

.. code-block:: python
    :linenos:
    :emphasize-lines: 1

    print("kept")

.. toctree::
    :maxdepth: 1

    hidden-page

.. literalinclude:: ../code.py
    :language: python

.. autoclass:: ray.serve.Deployment
    :members:

.. contents:: On this page

.. tab-set::

    .. tab-item:: Python

        Tab body.

.. versionadded:: 2.5

    Something new.

.. seealso:: The other page.

.. this is a comment

Second Title
------------

.. grid-item-card::

    **Card title**
    ^^^
    Card body.
    +++
    .. button-ref:: target

        Learn more
"""
    doc = parse_rst(text, source="s")
    assert doc.title == "Top Title"
    assert [(s.title, s.anchor, s.level) for s in doc.sections] == [
        ("Top Title", "top-title", 1),
        ("Second Title", "second-title", 2),
    ]
    assert doc.sections[0].text.split("\n") == [
        "Intro with a ref, options and /serve/index.",
        'print("kept")',
        "ray.serve.Deployment",
        "Python",
        "Tab body.",
        "New in version 2.5",
        "Something new.",
        "The other page.",
    ]
    assert doc.sections[1].text.split("\n") == ["Card title", "Card body.", "Learn more"]


def test_click_directive_without_prog_uses_the_command_name() -> None:
    doc = parse_rst(
        "Tools\n=====\n\nThe commands.\n\n.. click:: pkg.cli:serve\n   :show-nested:\n\n"
        ".. click:: pkg.cli:main\n   :prog: pkg run\n",
        source="tools.rst",
    )
    assert [(s.title, s.anchor, s.text) for s in doc.sections] == [
        ("Tools", "tools", "The commands."),
        ("serve", "serve", "serve"),
        ("pkg run", "pkg-run", "pkg run"),
    ]


def test_text_before_first_section_and_duplicate_titles() -> None:
    doc = parse_rst("Lead paragraph.\n\nPart\n====\n\nOne.\n\nPart\n====\n\nTwo.\n", source="s", fallback_title="f.rst")
    assert [(s.title, s.anchor, s.text) for s in doc.sections] == [
        ("Part", None, "Lead paragraph."),
        ("Part", "part", "One."),
        ("Part", "part-1", "Two."),
    ]
    assert parse_rst("Just text.\n", source="s", fallback_title="f.rst").title == "f.rst"


def test_docutils_failure_falls_back_to_plain_text(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(_: str) -> None:
        raise RuntimeError("docutils blew up")

    monkeypatch.setattr(rst_module, "_doctree", broken)
    doc = parse_rst("Title\n=====\n\nBody line.\n\nSub\n---\n\nMore.\n", source="s")
    assert [(s.title, s.anchor, s.level, s.text) for s in doc.sections] == [
        ("Title", "title", 1, "Body line."),
        ("Sub", "sub", 2, "More."),
    ]


def test_eval_rst_fragment_to_text() -> None:
    assert rst_to_text(".. note::\n\n   See :class:`~a.B` and ``code``.\n") == "See B and code."


@pytest.mark.parametrize(
    "text",
    [
        ":ref:`broken <",
        ".. |x| replace:: y\n\n|undefined| text ``unclosed *emph",
        "".join("  " * i + "- item\n" for i in range(300)),
        "Title\n=====\n\n.. raw:: html\n\n   <script>x</script>\n\n.. include:: /etc/passwd\n",
        "=====\nOver\n=====\n\n" + ".. unknown-directive:: arg\n   :weird-option:\n\n   body\n" * 3,
        "\x0c\x0b weird \u2028 separators\n-----\n",
    ],
)
def test_hostile_rst_does_not_crash(text: str) -> None:
    doc = parse_rst(text, source="s")
    assert "passwd" not in doc.text and "<script>" not in doc.text
