"""Which parser reads a crawled response, and which links are worth a request, both asked of the parse
registry (``ragline.parse``), so a format it learns is crawled with no change here."""

from __future__ import annotations

import posixpath
from collections.abc import Iterable
from urllib.parse import unquote, urlsplit

from ragline.parse import kind_for, kind_for_media_type

# Content types that do not say what a body is: servers send them for files they have no type for (.rst,
# .ipynb, .md on many), so the URL's extension decides, and plain text is the last resort.
UNDECIDED_TYPES = frozenset(
    {"text/plain", "application/octet-stream", "binary/octet-stream", "application/json", "application/x-download"}
    | {"application/download", "application/force-download", "application/unknown"}
)
# Links to these are never documents, unless the parse registry knows the extension (it is asked first).
NOT_DOCUMENTS = frozenset(
    {".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp", ".ico", ".bmp", ".tif", ".tiff", ".zip", ".gz", ".tgz"}
    | {".bz2", ".xz", ".tar", ".whl", ".exe", ".dmg", ".iso", ".mp3", ".mp4", ".webm", ".avi", ".mov", ".wav"}
    | {".ogg", ".woff", ".woff2", ".ttf", ".eot", ".otf", ".css", ".js", ".mjs", ".map", ".json", ".xml", ".csv"}
    | {".py"}
)


def media_type(content_type: str) -> str:
    """``text/html; charset=utf-8`` -> ``text/html``."""
    return content_type.split(";", 1)[0].strip().lower()


def _file_name(url: str) -> str:
    return unquote(urlsplit(url).path.rsplit("/", 1)[-1])


def response_kind(content_type: str, url: str, html_types: Iterable[str] = ()) -> str | None:
    """The parse kind of a response: its Content-Type when that names a kind (``html_types`` read as HTML),
    else the URL's extension, else plain text for ``text/plain`` and HTML when no type is sent; None when no
    parser reads it."""
    media = media_type(content_type)
    if media in html_types:
        return "html"
    if media and media not in UNDECIDED_TYPES:
        return kind_for_media_type(media)
    by_name = kind_for(_file_name(url))
    if by_name is not None:
        return by_name
    if not media:
        return "html"  # no Content-Type at all: read it as a page, as browsers do
    return kind_for_media_type(media)


def worth_fetching(url: str) -> bool:
    """False for a link to a file no parser reads (an image, an archive, a stylesheet...)."""
    name = _file_name(url)
    ext = posixpath.splitext(name)[1].lower()
    return ext not in NOT_DOCUMENTS or kind_for(name) is not None
