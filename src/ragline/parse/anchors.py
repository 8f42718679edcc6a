"""Anchor slugs, computed the way the sites that render the documents compute them.

A citation is ``URL#anchor``; it only lands on the right heading if the anchor is the one the
published page carries. Sphinx (reStructuredText and MyST) uses docutils ids; GitHub, Docusaurus
and Jupyter-rendered Markdown use github-slugger.
"""

from __future__ import annotations

import re
from typing import Literal

from docutils.nodes import make_id

AnchorStyle = Literal["github", "sphinx"]

# github-slugger keeps letters, digits, "_", "-" and spaces; everything else is dropped.
_GITHUB_DROP = re.compile(r"[^\w\- ]", re.UNICODE)


def sphinx_id(text: str) -> str:
    """The id docutils (hence Sphinx) gives a section titled ``text``."""
    return make_id(text)


def myst_id(text: str) -> str:
    """The id Sphinx gives a MyST heading when MyST's ``smartquotes`` extension is on.

    Smart quotes turn ' and " into curly quotes before docutils makes the id, and docutils drops
    non-ASCII characters: "Ray's logger" -> ``rays-logger`` (not ``ray-s-logger``).
    """
    return make_id(text.replace("'", "").replace('"', ""))


def github_slug(text: str) -> str:
    """The slug GitHub and Docusaurus give a heading (no de-duplication)."""
    return _GITHUB_DROP.sub("", text.strip().lower()).replace(" ", "-")


def slugify(text: str, style: AnchorStyle, *, markdown: bool = False) -> str:
    """Slug ``text`` in the given style; ``markdown`` selects the MyST flavour of Sphinx ids."""
    if style == "sphinx":
        return myst_id(text) if markdown else sphinx_id(text)
    return github_slug(text)


class AnchorRegistry:
    """Hands out anchors unique within one document, suffixing repeats with -1, -2, ...

    Both github-slugger and recent docutils number repeated ids this way. Explicit ids (an
    ``id`` attribute, a ``{#custom}`` heading id) are recorded so slugs never collide with them.
    """

    def __init__(self) -> None:
        self._seen: set[str] = set()
        self._counts: dict[str, int] = {}

    def reserve(self, anchor: str) -> str:
        """Record an anchor that the page itself defines, and return it unchanged."""
        self._seen.add(anchor)
        return anchor

    def __contains__(self, anchor: object) -> bool:
        return anchor in self._seen

    def unique(self, slug: str) -> str:
        """Return ``slug``, or ``slug-N`` for the first N not taken yet."""
        if slug not in self._seen:
            self._seen.add(slug)
            return slug
        n = self._counts.get(slug, 0)
        while True:
            n += 1
            candidate = f"{slug}-{n}"
            if candidate not in self._seen:
                self._counts[slug] = n
                self._seen.add(candidate)
                return candidate
