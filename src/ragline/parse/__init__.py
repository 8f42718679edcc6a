"""Documents in, sections with anchors out: one pure parser per kind, chosen through a registry.

``parse_bytes`` is the single entry point for sources (local files, the crawler): it picks the
parser for the kind, hands it the bytes, and turns any unexpected parser failure into a
SourceError, so one bad document never aborts an ingest. A text parser (``Parser``) gets the text:
binary content is rejected and the bytes decoded first (honouring an HTML page's declared
charset). A binary parser (``BinaryParser``: PDF, DOCX) reads the bytes itself.
"""

from __future__ import annotations

import codecs
import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePath, PurePosixPath

from ragline.config import ParseSettings
from ragline.errors import SourceError
from ragline.parse import docx, pdf
from ragline.parse.bounds import check_indentation, check_lines
from ragline.parse.html import declared_charset, parse_html
from ragline.parse.includes import IncludeResolver
from ragline.parse.text import parse_text
from ragline.privacy import Redactor, redact_document
from ragline.records import Document

__all__ = [
    "PARSERS",
    "BinaryParser",
    "ParseContext",
    "Parser",
    "kind_for",
    "kind_for_media_type",
    "looks_binary",
    "looks_like_rst",
    "parse_bytes",
]

BINARY_SNIFF_BYTES = 8192
_TEXT_CONTROL_BYTES = frozenset(b"\t\n\r\f\b\x1b")
_RST_HINT_RE = re.compile(
    r"^\.\. [\w:.+-]+::|^\.\. _[^:\n]+:\s*$|^(\S[^\n]*)\n([=\-~^\"'`#*+<>:.])\2{2,}\s*$", re.MULTILINE
)


@dataclass(frozen=True, slots=True)
class ParseContext:
    """What a parser may know besides the text: where it comes from and the parse settings."""

    source: str
    settings: ParseSettings
    path: str | None = None
    root: str | None = None  # the folder a local file was found under: ``/`` in its include paths
    size: int = 0  # bytes of the document as read

    def includes(self) -> IncludeResolver | None:
        """Reads the files a local document includes (``literalinclude``, ``include``); None for other sources.

        The document and all it includes are bounded together by ``max_file_bytes``."""
        return IncludeResolver.for_document(
            self.path, self.root, self.settings.include_paths, size=self.size, max_expanded=self.settings.max_file_bytes
        )

    @property
    def name(self) -> str | None:
        """The file (or last URL segment) name, the title of last resort."""
        ref = self.path or self.source.split("?", 1)[0].split("#", 1)[0].rstrip("/")
        name = PurePosixPath(ref.replace("\\", "/")).name
        return name or None


@dataclass(frozen=True, slots=True)
class Parser:
    """A parser of text: ``read`` refuses binary content and decodes the bytes before ``parse`` sees them."""

    kind: str
    extensions: tuple[str, ...]
    parse: Callable[[str, ParseContext], Document]
    media_types: tuple[str, ...] = ()  # HTTP content types of the kind, without parameters

    def read(self, data: bytes, ctx: ParseContext) -> Document:
        if looks_binary(data):
            raise SourceError("binary content")
        return self.parse(_decode(data, self.kind), ctx)


@dataclass(frozen=True, slots=True)
class BinaryParser:
    """A parser of a binary format: ``parse`` gets the bytes as read."""

    kind: str
    extensions: tuple[str, ...]
    parse: Callable[[bytes, ParseContext], Document]
    media_types: tuple[str, ...] = ()

    def read(self, data: bytes, ctx: ParseContext) -> Document:
        return self.parse(data, ctx)


def _html(text: str, ctx: ParseContext) -> Document:
    return parse_html(
        text, source=ctx.source, selector=ctx.settings.html_selector, fallback_title=ctx.name, path=ctx.path
    )


# The Markdown, reStructuredText and notebook parsers (markdown-it, docutils) are imported when a document of
# their kind is first parsed: an ingest of HTML pages starts that much sooner.


def _markdown(text: str, ctx: ParseContext) -> Document:
    from ragline.parse.markdown import parse_markdown

    check_lines(text, ctx.settings.max_line_chars)

    mdx = (ctx.path or ctx.source).lower().endswith(".mdx")
    return parse_markdown(
        text, source=ctx.source, mdx=mdx, fallback_title=ctx.name, path=ctx.path, includes=ctx.includes()
    )


def _rst(text: str, ctx: ParseContext) -> Document:
    from ragline.parse.rst import parse_rst

    check_lines(text, ctx.settings.max_line_chars)
    check_indentation(text)
    return parse_rst(text, source=ctx.source, fallback_title=ctx.name, path=ctx.path, includes=ctx.includes())


def _notebook(text: str, ctx: ParseContext) -> Document:
    from ragline.parse.notebook import parse_notebook

    return parse_notebook(
        text,
        source=ctx.source,
        output_chars=ctx.settings.notebook_output_chars,
        fallback_title=ctx.name,
        path=ctx.path,
    )


def _text(text: str, ctx: ParseContext) -> Document:
    # .txt files in a Sphinx tree are often reStructuredText (Sphinx accepts them as sources); plain text parses
    # in linear time whatever its lines, so only the rST road checks them (a page too long still meets the
    # chunk bound).
    if looks_like_rst(text):
        return _rst(text, ctx)
    return parse_text(text, source=ctx.source, fallback_title=ctx.name, path=ctx.path)


def _pdf(data: bytes, ctx: ParseContext) -> Document:
    return pdf.parse_pdf(
        data, source=ctx.source, fallback_title=ctx.name, path=ctx.path, max_chars=ctx.settings.max_file_bytes
    )


def _docx(data: bytes, ctx: ParseContext) -> Document:
    return docx.parse_docx(
        data, source=ctx.source, fallback_title=ctx.name, path=ctx.path, max_bytes=ctx.settings.max_file_bytes
    )


PARSERS: dict[str, Parser | BinaryParser] = {
    p.kind: p
    for p in (
        Parser("html", (".html", ".htm", ".xhtml"), _html, ("text/html", "application/xhtml+xml")),
        Parser("markdown", (".md", ".mdx", ".markdown"), _markdown, ("text/markdown", "text/x-markdown")),
        Parser("rst", (".rst", ".rest"), _rst, ("text/x-rst", "text/prs.fallenstein.rst")),
        Parser("notebook", (".ipynb",), _notebook, ("application/x-ipynb+json",)),
        Parser("text", (".txt",), _text, ("text/plain",)),
        BinaryParser(pdf.KIND, (".pdf",), _pdf, pdf.MEDIA_TYPES),
        BinaryParser(docx.KIND, (".docx",), _docx, docx.MEDIA_TYPES),
    )
}
_BY_EXTENSION = {ext: p.kind for p in PARSERS.values() for ext in p.extensions}
_BY_MEDIA_TYPE = {media: p.kind for p in PARSERS.values() for media in p.media_types}


def kind_for(path: str | PurePath) -> str | None:
    """The document kind for a file name, from its extension; None when no parser handles it."""
    return _BY_EXTENSION.get(PurePath(path).suffix.lower())


def kind_for_media_type(content_type: str) -> str | None:
    """The document kind for an HTTP ``Content-Type`` (parameters ignored); None when no parser handles it."""
    return _BY_MEDIA_TYPE.get(content_type.split(";", 1)[0].strip().lower())


def looks_like_rst(text: str) -> bool:
    """Whether plain text uses reStructuredText markup: directives, labels or underlined titles."""
    for match in _RST_HINT_RE.finditer(text):
        title = match.group(1)
        if title is None or len(match.group(0)) - len(title) - 1 >= len(title.rstrip()):
            return True
    return False


def looks_binary(data: bytes) -> bool:
    """NUL bytes, or mostly control bytes, in the first 8 KB (UTF-16/32 with a BOM is text)."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        return False
    sample = data[:BINARY_SNIFF_BYTES]
    if b"\x00" in sample:
        return True
    control = sum(1 for b in sample if b < 32 and b not in _TEXT_CONTROL_BYTES)
    return bool(sample) and control / len(sample) > 0.1


def _decode(data: bytes, kind: str) -> str:
    for bom, codec in (
        (codecs.BOM_UTF8, "utf-8"),
        (codecs.BOM_UTF32_LE, "utf-32"),
        (codecs.BOM_UTF32_BE, "utf-32"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if data.startswith(bom):
            body = data[len(bom) :] if codec == "utf-8" else data
            try:
                return body.decode(codec)
            except UnicodeDecodeError as exc:
                raise SourceError(f"invalid {codec.upper()} at byte {exc.start}") from None
    if kind == "html":
        charset = declared_charset(data)
        # Browsers ignore a UTF-16/32 declaration on BOM-less bytes and read Latin-1 as windows-1252.
        if charset and charset != "utf-8" and not charset.startswith(("utf-16", "utf-32")):
            if charset in ("latin-1", "iso8859-1", "ascii"):
                charset = "cp1252"
            return data.decode(charset, errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SourceError(f"invalid UTF-8 at byte {exc.start}") from None


def parse_bytes(
    data: bytes,
    *,
    source: str,
    kind: str,
    settings: ParseSettings,
    path: str | None = None,
    root: str | None = None,
) -> Document:
    """Decode (text kinds) and parse one document; every failure is a SourceError with a short reason.

    The result may have no sections (a page without text): the caller decides how to report it.
    """
    parser = PARSERS.get(kind)
    if parser is None:
        raise SourceError(f"no parser for kind {kind!r}")
    if len(data) > settings.max_file_bytes:  # sources check first; this keeps every caller bounded
        raise SourceError(f"too big: {len(data)} bytes > max_file_bytes {settings.max_file_bytes}")
    try:
        doc = parser.read(data, ParseContext(source=source, settings=settings, path=path, root=root, size=len(data)))
    except SourceError:
        raise
    except Exception as exc:  # one bad document must not abort an ingest
        raise SourceError(f"parser failed: {type(exc).__name__}: {exc}") from exc
    if settings.redact:
        # Here, the one step every source goes through: offsets, hashes, chunks and embeddings all
        # come from the redacted text.
        doc = redact_document(doc, _redactor(tuple(settings.redact_kinds)))
    return doc


@functools.cache
def _redactor(kinds: tuple[str, ...]) -> Redactor:
    return Redactor(kinds)
