"""Plain text -> one section, titled with its first non-empty line (or the file name)."""

from __future__ import annotations

from typing import Unpack

from ragline.parse.drafts import Origin, document, title_for
from ragline.records import Document, Section

KIND = "text"
_MAX_TITLE_CHARS = 120


def parse_text(text: str, **origin: Unpack[Origin]) -> Document:
    """Wrap a plain-text file as a single section; line breaks are kept as written."""
    body = text.replace("\r\n", "\n").replace("\r", "\n").strip("\n")
    first = next((line.strip() for line in body.splitlines() if line.strip()), "")
    title = title_for(origin, first[:_MAX_TITLE_CHARS].rstrip())
    return document(origin, [Section(title=title, text=body, anchor=None, level=1)], title=title, kind=KIND)
