"""Sections in the making: what a parser gathers under each heading, and the Document the drafts become.

Every parser walks its markup in document order and opens a new draft at each heading; the first draft holds
the text before the first heading and takes the document's title.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Required, TypedDict

from ragline.records import Document, Section


class Origin(TypedDict, total=False):
    """Where a document comes from, as every parser takes it (``parse_html(text, source=..., path=...)``):
    ``source``, its URL or file URI; ``path``, the file below the ingested folder; ``fallback_title``, the
    title to use when the document names none (e.g. from the file name)."""

    source: Required[str]
    fallback_title: str | None
    path: str | None


def title_for(origin: Origin, *found: str | None) -> str:
    """The first title the document gives itself, else the caller's fallback, else its source."""
    return next((t for t in found if t), None) or origin.get("fallback_title") or origin["source"]


def document(origin: Origin, sections: list[Section], *, title: str, kind: str, source: str | None = None) -> Document:
    """The Document of ``sections`` from ``origin``; ``source`` overrides it (a page's canonical URL)."""
    return Document.from_sections(
        source=source or origin["source"], title=title, kind=kind, sections=sections, path=origin.get("path")
    )


@dataclass(slots=True)
class Draft:
    title: str
    anchor: str | None
    level: int
    lines: list[str] = field(default_factory=list)


def preamble() -> Draft:
    """The draft for the text before the first heading."""
    return Draft(title="", anchor=None, level=1)


def to_document(drafts: list[Draft], origin: Origin, *, title: str, kind: str, source: str | None = None) -> Document:
    """The Document of ``drafts``; untitled sections (the preamble among them) take the document's title."""
    sections = [
        Section(title=d.title or title, text="\n".join(d.lines), anchor=d.anchor, level=d.level) for d in drafts
    ]
    return document(origin, sections, title=title, kind=kind, source=source)
