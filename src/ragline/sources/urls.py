"""URLs for the crawler: canonical forms, the crawl scope, link extraction and file names for stored pages.

Two forms of a URL matter. ``normalize_url`` gives the form to request: lower-case scheme and host, no default port,
no fragment, no tracking parameters, sorted query, no trailing ``index.html``. ``canonical_url`` is the page's
identity on top of that: the trailing slash is dropped too, because ``/docs/x`` and ``/docs/x/`` are one page on
every documentation site (one of them redirects to the other), so each page is fetched once.
"""

from __future__ import annotations

import fnmatch
import hashlib
import posixpath
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, unquote, urlencode, urljoin, urlsplit, urlunsplit

from selectolax.lexbor import LexborHTMLParser

from ragline.parse.html import cap_depth
from ragline.sources.robots import robots_tag

DEFAULT_PORTS = {"http": 80, "https": 443}
INDEX_FILES = frozenset({"index.html", "index.htm"})
# Parameters that only say where a visitor came from: never part of a page's identity.
TRACKING_PARAMS = frozenset(
    {"gclid", "dclid", "fbclid", "msclkid", "yclid", "igshid", "mc_cid", "mc_eid", "_ga", "_gl", "_hsenc", "_hsmi"}
    | {"mkt_tok", "ref_src", "ref_url"}
)
TRACKING_PREFIXES = ("utm_",)
_PERCENT_RE = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"
_SAFE_SEGMENT_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def _normalize_percent(text: str) -> str:
    """Decode percent-escapes of unreserved characters, upper-case the others, escape what must be."""

    def fix(m: re.Match[str]) -> str:
        char = chr(int(m.group(1), 16))
        return char if char in _UNRESERVED else f"%{m.group(1).upper()}"

    return quote(_PERCENT_RE.sub(fix, text), safe=_PATH_SAFE)


def _remove_dot_segments(path: str) -> str:
    if "/." not in path and not path.startswith("."):
        return path
    trailing = path.endswith(("/", "/.", "/.."))
    clean = posixpath.normpath(path)
    if clean.startswith("//"):  # normpath keeps a leading '//' (POSIX); a URL path does not need it
        clean = "/" + clean.lstrip("/")
    return clean + "/" if trailing and clean != "/" else clean


def _is_tracking(name: str) -> bool:
    low = name.lower()
    return low in TRACKING_PARAMS or low.startswith(TRACKING_PREFIXES)


def normalize_url(url: str) -> str:
    """The form of ``url`` to request; raises ValueError for anything that is not an absolute http(s) URL."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        raise ValueError(f"not an absolute http(s) URL: {url!r}")
    host = parts.hostname.lower().rstrip(".")
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    port = parts.port  # raises ValueError on a bad port
    netloc = host if port is None or port == DEFAULT_PORTS[scheme] else f"{host}:{port}"
    path = _remove_dot_segments(_normalize_percent(parts.path or "/"))
    head, _, last = path.rpartition("/")
    if last.lower() in INDEX_FILES:
        path = head + "/"
    params = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _is_tracking(k)]
    query = urlencode(sorted(params), quote_via=quote, safe="/:@!$'()*+,;-._~")
    return urlunsplit((scheme, netloc, path, query, ""))


def canonical_url(url: str) -> str:
    """A page's identity: ``normalize_url`` without the trailing slash (the site root keeps its ``/``)."""
    return identity(normalize_url(url))


def identity(normalized: str) -> str:
    """``canonical_url`` of a URL that is already normalized (the crawler's hot path)."""
    parts = urlsplit(normalized)
    path = parts.path.rstrip("/") or "/"
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


def host_of(url: str) -> str:
    """``scheme://netloc`` of a normalized URL: the unit of robots.txt and of the rate limit."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@dataclass(frozen=True, slots=True)
class Scope:
    """Which URLs a crawl may request: the start URL's scheme, host and path prefix, widened by ``include``
    globs and narrowed by ``exclude`` globs (both matched against the whole normalized URL; ``*`` crosses ``/``)."""

    scheme: str
    netloc: str
    prefix: str  # always ends with '/'
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    @classmethod
    def from_start(cls, start_url: str, include: Iterable[str] = (), exclude: Iterable[str] = ()) -> Scope:
        parts = urlsplit(normalize_url(start_url))
        path = parts.path
        if not path.endswith("/"):
            head, _, last = path.rpartition("/")
            # /docs/guide.html -> /docs/ ; /docs/guide -> /docs/guide/ (a folder whose slash was left off)
            path = head + "/" if "." in last else path + "/"
        return cls(parts.scheme, parts.netloc, path, tuple(include), tuple(exclude))

    def contains(self, url: str) -> bool:
        if any(fnmatch.fnmatchcase(url, p) for p in self.exclude):
            return False
        if any(fnmatch.fnmatchcase(url, p) for p in self.include):
            return True
        parts = urlsplit(url)
        if parts.scheme != self.scheme or parts.netloc != self.netloc:
            return False
        return parts.path.startswith(self.prefix) or parts.path == self.prefix.rstrip("/")

    @property
    def root(self) -> str:
        return urlunsplit((self.scheme, self.netloc, self.prefix, "", ""))


@dataclass(frozen=True, slots=True)
class PageLinks:
    """What a page says about crawling it: its links and its ``<meta name=robots>`` wishes."""

    links: list[str]
    nofollow: bool = False
    noindex: bool = False


def extract_links(html: bytes | str, page_url: str, token: str = "") -> PageLinks:
    """Absolute http(s) links of a page (``<base href>`` honoured, fragments dropped, in document order, once).

    ``<meta name=robots>`` applies, and so does a meta named after the crawler's product token ``token``.
    Tags nested deeper than the parser's depth cap are dropped first, as the parser does: the tree builder is
    quadratic in nesting, and a page of 200,000 nested ``<div>`` would stall the crawl.
    """
    text = html.decode("utf-8", errors="replace") if isinstance(html, bytes) else html
    tree = LexborHTMLParser(cap_depth(text))
    names = {"robots", token} - {""}
    metas = [m for m in tree.css("meta[name][content]") if (m.attributes.get("name") or "").lower() in names]
    wish = robots_tag([m.attributes.get("content") or "" for m in metas], token)
    nofollow, noindex = wish.nofollow, wish.noindex
    base_node = tree.css_first("base[href]")
    base = urljoin(page_url, (base_node.attributes.get("href") or "").strip()) if base_node is not None else page_url
    seen: dict[str, None] = {}
    if not nofollow:
        for node in tree.css("a[href], area[href]"):
            href = (node.attributes.get("href") or "").strip()
            if not href or href.startswith(("#", "mailto:", "javascript:", "tel:", "data:")):
                continue
            absolute = urljoin(base, href).split("#", 1)[0]
            if absolute.startswith(("http://", "https://")):
                seen.setdefault(absolute, None)
    return PageLinks(list(seen), nofollow=nofollow, noindex=noindex)


def short_hash(text: str, n: int = 8) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:n]


def _segments(path: str) -> Iterator[str]:
    for seg in unquote(path).split("/"):
        if seg:
            yield seg


def page_file(url: str) -> str:
    """Where a page is stored, relative to the crawl folder: ``host/path/.../index.html``.

    Paths that are not plain (a query, odd characters, very long segments) get a short hash of the URL in the
    file name, so two different URLs never map to the same file.
    """
    parts = urlsplit(url)
    host = parts.netloc.replace("[", "").replace("]", "").replace(":", "_")
    segs = list(_segments(parts.path))
    if parts.path.endswith("/") or not segs or "." not in segs[-1]:
        segs.append("index.html")  # /docs/x and /docs/x/ are both a folder's page
    plain = not parts.query and all(_SAFE_SEGMENT_RE.fullmatch(s) for s in segs)
    if not plain:
        segs = [re.sub(r"[^A-Za-z0-9._-]", "_", s)[:80].lstrip(".") or "_" for s in segs]
        stem, ext = posixpath.splitext(segs[-1])
        segs[-1] = f"{stem}~{short_hash(url)}{ext or '.html'}"
    return "/".join([host, *segs])


def fallback_file(url: str) -> str:
    """A flat, collision-free name for the rare URL whose ``page_file`` is taken or clashes with a folder."""
    host = page_file(url).split("/", 1)[0]
    return f"{host}/_by_hash/{short_hash(url, 24)}.html"
