"""Word (.docx) -> sections: one per heading (Heading 1..n styles), with slug anchors; tables and lists as text.

Read with python-docx (extra ``documents``). A DOCX is a zip: its declared unpacked size is checked before
anything is unpacked, so a small file cannot expand into gigabytes of XML. Password-protected files are not
zips at all (an OLE container holding the encrypted package) and are refused with that reason.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Unpack

from ragline.errors import MissingDependencyError, SourceError
from ragline.parse.anchors import AnchorRegistry, github_slug
from ragline.parse.drafts import Origin, document, title_for
from ragline.records import Document, Section

KIND = "docx"
MEDIA_TYPES = ("application/vnd.openxmlformats-officedocument.wordprocessingml.document",)
UNPACKED_RATIO = 5  # a DOCX may unpack to this many times max_file_bytes
MAX_PARTS = 10_000
MAX_NESTING = 16  # content controls inside content controls, followed this deep
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_HEADING_RE = re.compile(r"^heading ([1-9])$", re.IGNORECASE)
_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"


@dataclass(slots=True)
class _Builder:
    """Collects blocks under the current heading and hands out unique anchors."""

    sections: list[Section] = field(default_factory=list)
    title: str = ""
    anchors: AnchorRegistry = field(default_factory=AnchorRegistry)
    _head: tuple[str, str | None, int] = ("", None, 1)
    _blocks: list[str] = field(default_factory=list)
    _item: bool = False  # the last block added is a list

    def heading(self, text: str, level: int) -> None:
        self._flush()
        self._head = (text, self.anchors.unique(github_slug(text) or "section"), level)

    def add(self, block: str, *, item: bool = False) -> None:
        """Add a paragraph or table; list items in a row stay on consecutive lines."""
        if not block.strip():
            return
        if item and self._item and self._blocks:
            self._blocks[-1] += "\n" + block
        else:
            self._blocks.append(block)
        self._item = item

    def finish(self) -> list[Section]:
        self._flush()
        return self.sections

    def _flush(self) -> None:
        title, anchor, level = self._head
        if self._blocks:
            self.sections.append(Section(title=title, text="\n\n".join(self._blocks), anchor=anchor, level=level))
        self._blocks = []
        self._item = False


def _python_docx() -> tuple[Any, Any, Any]:
    """python-docx's document opener, table and paragraph classes."""
    try:
        from docx import Document as open_docx
        from docx.table import Table
        from docx.text.paragraph import Paragraph
    except ImportError:
        raise SourceError(str(MissingDependencyError("python-docx", "documents"))) from None
    return open_docx, Table, Paragraph


def parse_docx(data: bytes, *, max_bytes: int | None = None, **origin: Unpack[Origin]) -> Document:
    """Parse DOCX bytes into heading sections; encrypted, broken or oversized files are SourceErrors."""
    open_docx, table_of, paragraph_of = _python_docx()
    _check_package(data, max_bytes)
    try:
        word = open_docx(io.BytesIO(data))
    except Exception as exc:  # python-docx reports a wrong or broken package in many ways
        raise SourceError(f"not a readable DOCX: {type(exc).__name__}: {exc}") from None
    out = _Builder()
    numbering = _Numbering(word)
    for block in _blocks(word.element.body, word, 0):
        if block.tag == f"{_W}tbl":
            out.add(_table_text(table_of(block, word)))
            continue
        para = paragraph_of(block, word)
        text = " ".join(para.text.split())
        style = _style_names(para)
        if "title" in style and not out.title:
            out.title = text
            continue
        level = _heading_level(style)
        if level is not None and text:
            out.heading(text, level)
        elif text:
            marker = numbering.prefix(para, style)
            out.add(marker + text, item=bool(marker))
    sections = out.finish()
    props_title = " ".join((word.core_properties.title or "").split())
    first_heading = next((s.title for s in sections if s.title), "")
    title = title_for(origin, props_title, out.title, first_heading)
    for s in sections:
        s.title = s.title or title  # the text before the first heading
    return document(origin, sections, title=title, kind=KIND)


def _check_package(data: bytes, max_bytes: int | None) -> None:
    if data.startswith(_OLE_MAGIC):
        if "EncryptionInfo".encode("utf-16-le") in data:
            raise SourceError("encrypted DOCX: a password is needed to read it")
        raise SourceError("not a DOCX: an OLE file (a legacy .doc?)")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as package:
            infos = package.infolist()
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise SourceError(f"not a readable DOCX (damaged, truncated or another format): {exc}") from None
    if len(infos) > MAX_PARTS:
        raise SourceError(f"too big: {len(infos)} parts in the package > {MAX_PARTS}")
    unpacked = sum(i.file_size for i in infos)
    if max_bytes is not None and unpacked > UNPACKED_RATIO * max_bytes:
        raise SourceError(f"too big: unpacks to {unpacked} bytes > {UNPACKED_RATIO} x max_file_bytes {max_bytes}")


def _blocks(parent: Any, word: Any, depth: int) -> Iterator[Any]:
    """Paragraph and table elements in document order, inside content controls (``w:sdt``) too."""
    for child in parent.iterchildren():
        if child.tag in (f"{_W}p", f"{_W}tbl"):
            yield child
        elif child.tag == f"{_W}sdt" and depth < MAX_NESTING:
            content = child.find(f"{_W}sdtContent")
            if content is not None:
                yield from _blocks(content, word, depth + 1)


def _style_names(para: Any) -> list[str]:
    """The paragraph's style name and those it is based on, lowercased (custom headings inherit Heading N)."""
    names: list[str] = []
    try:
        style = para.style
    except (KeyError, ValueError, AttributeError):  # a style id the styles part does not define
        return names
    while style is not None and len(names) < 8:
        names.append((style.name or "").lower())
        style = style.base_style
    return names


def _heading_level(styles: list[str]) -> int | None:
    for name in styles:
        match = _HEADING_RE.match(name)
        if match:
            return int(match.group(1))
    return None


def _table_text(table: Any) -> str:
    """One line per row, cells separated by `` | `` (a merged cell once)."""
    lines: list[str] = []
    for row in table.rows:
        cells: list[str] = []
        last = None
        for cell in row.cells:
            if cell._tc is last:
                continue
            last = cell._tc
            cells.append(" ".join(cell.text.split()))
        if any(cells):
            lines.append(" | ".join(cells))
    return "\n".join(lines)


class _Numbering:
    """List item markers: ``-`` for bullets, ``1.``, ``2.``... for numbered lists, indented by level."""

    def __init__(self, word: Any) -> None:
        self._formats: dict[tuple[str, int], str] = {}
        self._counters: dict[tuple[str, int], int] = {}
        try:
            root = word.part.numbering_part.element
        except (KeyError, NotImplementedError, AttributeError, ValueError):
            return
        abstract = {
            a.get(f"{_W}abstractNumId"): {
                int(lvl.get(f"{_W}ilvl") or 0): _val(lvl.find(f"{_W}numFmt")) for lvl in a.findall(f"{_W}lvl")
            }
            for a in root.findall(f"{_W}abstractNum")
        }
        for num in root.findall(f"{_W}num"):
            ref = _val(num.find(f"{_W}abstractNumId"))
            for ilvl, fmt in abstract.get(ref, {}).items():
                self._formats[(num.get(f"{_W}numId") or "", ilvl)] = fmt

    def prefix(self, para: Any, styles: list[str]) -> str:
        """The marker of a list item ("" for other paragraphs); numbering set on the paragraph or its style."""
        num = _num_props(para)
        listed = any(name.startswith("list") for name in styles)
        if num is None:
            return "- " if listed else ""
        num_id = _val(num.find(f"{_W}numId"))
        if num_id in ("", "0"):  # numId 0 switches numbering off
            return ""
        ilvl = num.find(f"{_W}ilvl")
        # Styles such as "List Bullet 2" give the level by their name, not by an ilvl.
        level = _int(_val(ilvl)) if ilvl is not None else _style_level(styles) if listed else 0
        indent = "  " * level
        if self._formats.get((num_id, level), "bullet") in ("bullet", "none", ""):
            return f"{indent}- "
        key = (num_id, level)
        self._counters[key] = self._counters.get(key, 0) + 1
        for deeper in [k for k in self._counters if k[0] == num_id and k[1] > level]:
            del self._counters[deeper]  # a parent item restarts its sub-list
        return f"{indent}{self._counters[key]}. "


def _num_props(para: Any) -> Any:
    props = para._p.pPr
    if props is not None and props.numPr is not None:
        return props.numPr
    try:
        style = para.style
    except (KeyError, ValueError, AttributeError):
        return None
    for _ in range(8):
        if style is None:
            return None
        found = style.element.find(f"{_W}pPr/{_W}numPr")
        if found is not None:
            return found
        style = style.base_style
    return None


def _style_level(styles: list[str]) -> int:
    match = re.search(r" ([2-9])$", styles[0]) if styles else None
    return int(match.group(1)) - 1 if match else 0


def _val(element: Any) -> str:
    return "" if element is None else str(element.get(f"{_W}val") or "")


def _int(value: str) -> int:
    return min(int(value), 9) if value.isdigit() else 0
