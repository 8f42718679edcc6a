"""Sections in the making: what a parser gathers under each heading, and the Document the drafts become.

Every parser walks its markup in document order and opens a new draft at each heading; the first draft holds
the text before the first heading and takes the document's title.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ragline.records import Document, Section


@dataclass(slots=True)
class Draft:
    title: str
    anchor: str | None
    level: int
    lines: list[str] = field(default_factory=list)


def preamble() -> Draft:
    """The draft for the text before the first heading."""
    return Draft(title="", anchor=None, level=1)


def to_document(drafts: list[Draft], *, source: str, title: str, kind: str, path: str | None) -> Document:
    """The Document of ``drafts``; untitled sections (the preamble among them) take the document's title."""
    sections = [
        Section(title=d.title or title, text="\n".join(d.lines), anchor=d.anchor, level=d.level) for d in drafts
    ]
    return Document.from_sections(source=source, title=title, kind=kind, sections=sections, path=path)
