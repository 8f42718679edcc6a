"""PDF -> sections anchored at their pages (``#page=N``), titled by the outline where the file has one.

Text comes from PDFium (pypdfium2, extra ``documents``): on a real manual it keeps the spaces between words
that other extractors lose, and reads pages about twenty times faster (bench/pdf_parsers.py). Sections never
span a page break, so every chunk cites the page its text is on; outline entries (bookmarks) start a new
section, titled by the entry, at the line of the page where their title appears.

PDFium is not thread-safe, not even across documents, and the local engine parses in threads: every
call into it holds one process-wide lock, and every PDFium object is closed before the lock is released.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any, Unpack

from ragline.errors import MissingDependencyError, SourceError
from ragline.parse.drafts import Origin, document, title_for
from ragline.records import Document, Section

KIND = "pdf"
MEDIA_TYPES = ("application/pdf", "application/x-pdf")
MAX_OUTLINE_DEPTH = 8  # deeper outline entries fold into their parent's section
MAX_OUTLINE_ENTRIES = 20_000
MAX_PAGES = 50_000  # a page tree can name one page object many times: a tiny file with a million pages
_PDFIUM_LOCK = threading.Lock()
# Control characters PDFium leaves in page text (soft hyphens come out as U+0002, form feeds, NULs).
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\ufffe\uffff]")
# Page numbers in running headers and footers: 12, xiv, "12 / 233", "Page 3 of 9".
_PAGE_NUMBER_RE = re.compile(r"^(?:\d+|[ivxlcdm]+|[IVXLCDM]+|/|of|page|Page)$")
# A heading line may start with its number: "1.2.7 ", "A.3. ", "IV ".
_NUMBERING = r"(?:[0-9A-Z]{1,4}(?:\.[0-9A-Z]{1,4})*\.?[ \t]+)?"
_LEADER_RE = re.compile(r"(?:[ \t]?\.){4,}")  # the dot leaders of a table of contents
_RUNNING_MIN_PAGES = 4  # headers and footers are only told apart from text on documents this long


@dataclass(frozen=True, slots=True)
class OutlineEntry:
    title: str
    page: int  # zero-based page index
    level: int  # 1 for a top-level entry


@dataclass(slots=True)
class _Raw:
    title: str
    pages: list[str]
    outline: list[OutlineEntry]


def _pdfium() -> Any:
    try:
        import pypdfium2
    except ImportError:
        # A SourceError, not an abort: one missing extra skips the PDFs and names what to install.
        raise SourceError(str(MissingDependencyError("pypdfium2", "documents"))) from None
    return pypdfium2


def parse_pdf(data: bytes, *, max_chars: int | None = None, **origin: Unpack[Origin]) -> Document:
    """Parse PDF bytes into page-anchored sections; encrypted, text-less or broken files are SourceErrors.

    ``max_chars`` bounds the extracted text (a small file can hold a great deal of compressed text).
    """
    raw = _extract(data, max_chars)
    pages = _drop_running_lines([_clean(t) for t in raw.pages])
    if not any(p.strip() for p in pages):
        raise SourceError(f"no text layer (a scanned PDF?): no text on {len(pages)} page(s)")
    title = title_for(origin, raw.title)
    return document(origin, _sections(pages, raw.outline, title), title=title, kind=KIND)


def _extract(data: bytes, max_chars: int | None) -> _Raw:
    pdfium = _pdfium()
    with _PDFIUM_LOCK:
        try:
            pdf = pdfium.PdfDocument(data)
        except pdfium.PdfiumError as exc:
            raise SourceError(_load_reason(pdfium, exc)) from None
        try:
            n_pages = len(pdf)
            if n_pages == 0:
                raise SourceError("no pages")
            if n_pages > MAX_PAGES:
                raise SourceError(f"too big: {n_pages} pages > {MAX_PAGES}")
            title = " ".join(pdf.get_metadata_value("Title").split())
            outline = _outline(pdf, n_pages)
            pages: list[str] = []
            total = 0
            for i in range(n_pages):
                text = _page_text(pdfium, pdf, i)
                total += len(text)
                if max_chars is not None and total > max_chars:
                    raise SourceError(f"too big: text over max_file_bytes {max_chars} by page {i + 1}")
                pages.append(text)
        finally:
            pdf.close()
    return _Raw(title=title, pages=pages, outline=outline)


def _load_reason(pdfium: Any, exc: Exception) -> str:
    code = getattr(exc, "err_code", None)
    if code == pdfium.raw.FPDF_ERR_PASSWORD:
        return "encrypted PDF: a password is needed to read it"
    if code == pdfium.raw.FPDF_ERR_SECURITY:
        return "encrypted PDF: unsupported security scheme"
    return "not a readable PDF (damaged, truncated or another format)"


def _page_text(pdfium: Any, pdf: Any, index: int) -> str:
    """One page's text, or "" when PDFium cannot load the page (the rest of the file may still read)."""
    try:
        page = pdf[index]
    except pdfium.PdfiumError:
        return ""
    try:
        textpage = page.get_textpage()
        try:
            return str(textpage.get_text_bounded())
        finally:
            textpage.close()
    except pdfium.PdfiumError:
        return ""
    finally:
        page.close()


def _outline(pdf: Any, n_pages: int) -> list[OutlineEntry]:
    """The outline's entries that point at a page, in page order (stable for entries on one page)."""
    entries: list[OutlineEntry] = []
    for mark in pdf.get_toc(max_depth=MAX_OUTLINE_DEPTH):
        if len(entries) >= MAX_OUTLINE_ENTRIES:
            break
        title = " ".join(_CONTROL_RE.sub(" ", mark.get_title() or "").split())
        dest = mark.get_dest()
        page = dest.get_index() if dest is not None else None
        if title and page is not None and 0 <= page < n_pages:
            entries.append(OutlineEntry(title=title, page=page, level=mark.level + 1))
    return sorted(entries, key=lambda e: e.page)


def _clean(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = text.replace("\x02\n", "").replace("\x02", "-")  # PDFium's marker of a hyphen at a line break
    text = _LEADER_RE.sub(" ", _CONTROL_RE.sub("", text))
    return "\n".join(line.rstrip() for line in text.split("\n")).strip("\n")


def _mask(line: str) -> str:
    return " ".join(w for w in line.split() if not _PAGE_NUMBER_RE.match(w))


def _drop_running_lines(pages: list[str]) -> list[str]:
    """Drop running headers and footers: a first or last line that recurs, page numbers aside, on half the pages."""
    if len(pages) < _RUNNING_MIN_PAGES:
        return pages
    counts: Counter[str] = Counter()
    for text in pages:
        lines = [line for line in text.split("\n") if line.strip()]
        counts.update({_mask(line) for line in lines[:1] + lines[-1:]})
    running = {line for line, n in counts.items() if n >= len(pages) / 2}
    if not running:
        return pages
    out: list[str] = []
    for text in pages:
        lines = text.strip("\n").split("\n")
        # One line at each edge (a header, a footer), and never a page's last line.
        if len(lines) > 1 and _mask(lines[0]) in running:
            lines.pop(0)
        if len(lines) > 1 and _mask(lines[-1]) in running:
            lines.pop()
        out.append("\n".join(lines))
    return out


def _heading_at(text: str, title: str, start: int) -> int | None:
    """Offset of the line that is ``title`` (after any section number) on a page, at or after ``start``."""
    words = title.split()
    if not words:
        return None
    body = r"\s+".join(re.escape(w) for w in words)
    match = re.compile(rf"^[ \t]*{_NUMBERING}{body}[ \t]*$", re.MULTILINE).search(text, start)
    return None if match is None else match.start()


def _sections(pages: list[str], outline: list[OutlineEntry], title: str) -> list[Section]:
    by_page: dict[int, list[OutlineEntry]] = {}
    for entry in outline:
        by_page.setdefault(entry.page, []).append(entry)
    sections: list[Section] = []
    current = OutlineEntry(title=title if outline else "", page=0, level=1)
    for index, text in enumerate(pages):
        anchor = f"page={index + 1}"
        cut = 0
        for entry in by_page.get(index, []):
            at = _heading_at(text, entry.title, cut)
            at = cut if at is None else at
            sections.append(_section(current, text[cut:at], anchor, index))
            current, cut = entry, at
        sections.append(_section(current, text[cut:], anchor, index))
    return sections


def _section(entry: OutlineEntry, text: str, anchor: str, index: int) -> Section:
    # Without an outline a section is a page; with one, the part of a page under an entry.
    return Section(title=entry.title or f"Page {index + 1}", text=text.strip("\n"), anchor=anchor, level=entry.level)
