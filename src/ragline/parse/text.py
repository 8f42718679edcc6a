"""Plain text -> one section, titled with its first non-empty line (or the file name)."""

from __future__ import annotations

from ragline.records import Document, Section

KIND = "text"
_MAX_TITLE_CHARS = 120


def parse_text(
    text: str,
    *,
    source: str,
    fallback_title: str | None = None,
    path: str | None = None,
) -> Document:
    """Wrap a plain-text file as a single section; line breaks are kept as written."""
    body = text.replace("\r\n", "\n").replace("\r", "\n").strip("\n")
    first = next((line.strip() for line in body.splitlines() if line.strip()), "")
    title = first[:_MAX_TITLE_CHARS].rstrip() if first else (fallback_title or source)
    section = Section(title=title, text=body, anchor=None, level=1)
    return Document.from_sections(source=source, title=title, kind=KIND, sections=[section], path=path)
