"""What a site lets a crawler do: robots.txt (RFC 9309), the X-Robots-Tag header and ``<meta name=robots>``
directives, and the sitemaps it lists. Pure parsing, no I/O.

robots.txt rules are matched by protego (longest match wins, Allow wins a tie, ``*`` and ``$`` patterns). The
choice of group is made here, because RFC 9309 asks for an exact, case-insensitive match of the crawler's
product token (``ragline``), all groups naming it merged, and the ``*`` group only when none does; protego
would also take a group named after any prefix of the token (``User-agent: rag``).
"""

from __future__ import annotations

import gzip
import logging
import re
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import cast
from xml.etree import ElementTree

from protego import Protego

log = logging.getLogger(__name__)

_TOKEN_RE = re.compile(r"\s*([A-Za-z_-]+)")
_AGENT_FIELDS = frozenset({"user-agent", "useragent", "user agent"})
_RULE_FIELDS = {"allow": "Allow", "disallow": "Disallow", "crawl-delay": "Crawl-delay", "request-rate": "Request-rate"}
# X-Robots-Tag directives that carry a value after a colon: ``max-snippet: 20`` is not a user agent's name.
_VALUED_DIRECTIVES = frozenset({"unavailable_after", "max-snippet", "max-image-preview", "max-video-preview"})
_AGENT_PREFIX_RE = re.compile(r"\s*([A-Za-z0-9_.-]+)\s*:(.*)", re.DOTALL)


def product_token(user_agent: str) -> str:
    """The product token of a User-Agent string, lower-cased: ``ragline/0.1 (crawler)`` -> ``ragline``."""
    m = _TOKEN_RE.match(user_agent)
    return m.group(1).lower() if m else ""


def _records(text: str) -> Iterator[tuple[str, str]]:
    """``(field, value)`` of each ``field: value`` line, comments removed, the field lower-cased."""
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        name, sep, value = line.partition(":")
        if sep:
            yield name.strip().lower(), value.strip()


@dataclass(slots=True)
class _Group:
    agents: list[str] = field(default_factory=list)
    rules: list[str] = field(default_factory=list)  # normalised rule lines, in order


def _select(text: str, token: str) -> tuple[list[str] | None, list[str]]:
    """The rule lines of the groups that apply to ``token`` (None: no group applies), and the sitemaps."""
    groups: list[_Group] = []
    sitemaps: list[str] = []
    current: _Group | None = None
    in_agents = False  # the previous record was a user-agent line: a new one joins the same group
    for name, value in _records(text):
        if name == "sitemap":  # site-wide, not part of any group
            if value:
                sitemaps.append(value)
            continue
        if name in _AGENT_FIELDS:
            if current is None or not in_agents:
                current = _Group()
                groups.append(current)
            in_agents = True
            agent = "*" if value.startswith("*") else product_token(value)
            if agent:
                current.agents.append(agent)
            continue
        in_agents = False
        if current is not None and name in _RULE_FIELDS and value:  # rules before any user-agent are void
            current.rules.append(f"{_RULE_FIELDS[name]}: {value}")
    for wanted in (token, "*"):
        chosen = [g for g in groups if wanted in g.agents]
        if chosen:
            return [line for g in chosen for line in g.rules], sitemaps
    return None, sitemaps


@dataclass(slots=True)
class RobotsPolicy:
    """One host's robots.txt, read for one product token."""

    parser: Protego | None = None  # None: no rules (no robots.txt, robots ignored, or no group applies)
    disallow_all: bool = False
    reason: str = ""  # why everything is disallowed, for the report
    sitemaps: list[str] = field(default_factory=list)
    crawl_delay: float | None = None

    @classmethod
    def allow_all(cls) -> RobotsPolicy:
        return cls()

    @classmethod
    def blocked(cls, reason: str) -> RobotsPolicy:
        return cls(disallow_all=True, reason=reason)

    @classmethod
    def parse(cls, text: str, user_agent: str, *, truncated: bool = False) -> RobotsPolicy:
        """The rules of ``text`` for ``user_agent``'s product token; a ``truncated`` file loses its cut last line."""
        text = text.removeprefix("\ufeff")
        if truncated:
            text = text.rsplit("\n", 1)[0] if "\n" in text else ""
        rules, sitemaps = _select(text, product_token(user_agent))
        if rules is None:
            return cls(sitemaps=sitemaps)
        # One group holding exactly the chosen rules, so protego's own choice of group cannot differ from ours.
        parser = Protego.parse("User-agent: *\n" + "\n".join(rules))
        delay = parser.crawl_delay("*")
        rate = parser.request_rate("*")
        if rate is not None and rate.requests > 0:
            delay = max(delay or 0.0, rate.seconds / rate.requests)
        return cls(parser=parser, sitemaps=sitemaps, crawl_delay=delay)

    @classmethod
    def for_status(cls, status: int) -> RobotsPolicy:
        """No usable robots.txt. 401/403 forbid everything (stricter than RFC 9309, which allows any 4xx), as
        does 429 (a host asking to slow down) and an unreachable one (5xx, RFC 9309 section 2.3.1.4); any
        other status allows everything (section 2.3.1.3)."""
        if status in (401, 403):
            return cls.blocked(f"robots.txt answered HTTP {status}")
        if status == 429 or status >= 500:
            return cls.blocked(f"robots.txt unreachable (HTTP {status})")
        return cls.allow_all()

    def allows(self, url: str) -> bool:
        if self.disallow_all:
            return False
        return self.parser is None or self.parser.can_fetch(url, "*")


@dataclass(frozen=True, slots=True)
class RobotsTag:
    """What a page's X-Robots-Tag header or ``<meta name=robots>`` asks of this crawler."""

    noindex: bool = False
    nofollow: bool = False

    def __or__(self, other: RobotsTag) -> RobotsTag:
        return RobotsTag(self.noindex or other.noindex, self.nofollow or other.nofollow)


def robots_tag(values: Iterable[str], token: str) -> RobotsTag:
    """Directives of X-Robots-Tag values (or meta robots contents) that apply to ``token``.

    Each value is a comma-separated list; ``name: directives`` scopes the rest of that value to one crawler,
    and directives without a name apply to all. ``none`` means ``noindex, nofollow``; the strictest wins.
    """
    noindex = nofollow = False
    for value in values:
        agent: str | None = None
        for piece in value.split(","):
            m = _AGENT_PREFIX_RE.match(piece)
            if m and m.group(1).lower() not in _VALUED_DIRECTIVES:
                agent, piece = product_token(m.group(1)), m.group(2)
            if agent is not None and agent != token:
                continue
            words = set(piece.lower().split())
            noindex |= bool(words & {"noindex", "none"})
            nofollow |= bool(words & {"nofollow", "none"})
    return RobotsTag(noindex, nofollow)


def header_robots_tag(headers: dict[str, str], token: str) -> RobotsTag:
    """The X-Robots-Tag of a response; the fetcher keeps each header line of it on a line of its own."""
    value = headers.get("x-robots-tag")
    return robots_tag(value.split("\n"), token) if value else RobotsTag()


@dataclass(slots=True)
class Sitemap:
    """A parsed sitemap: page URLs (``<urlset>``) or further sitemaps (``<sitemapindex>``)."""

    pages: list[str] = field(default_factory=list)
    sitemaps: list[str] = field(default_factory=list)


def _local(tag: object) -> str:
    return str(tag).rsplit("}", 1)[-1].lower()


def parse_sitemap(
    data: bytes,
    max_bytes: int,
    *,
    max_pages: int = 0,
    max_sitemaps: int = 0,
    keep: Callable[[str], bool] | None = None,
) -> Sitemap:
    """Parse sitemap XML (gzip-compressed or not); broken XML yields an empty sitemap and a warning.

    Read as a stream: at most ``max_pages`` page URLs that ``keep`` accepts and ``max_sitemaps`` further sitemaps
    are taken (0: all), and the parse stops there, so a sitemap of 800k URLs costs no more than the few it gives.
    """
    if data[:2] == b"\x1f\x8b":
        try:
            # Bounded decompression: a small gzip can expand without limit.
            data = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data, max_bytes)
        except (zlib.error, gzip.BadGzipFile) as exc:
            log.warning("sitemap: bad gzip: %s", exc)
            return Sitemap()
    out = Sitemap()
    try:
        for index, url in _locs(data):
            target, limit = (out.sitemaps, max_sitemaps) if index else (out.pages, max_pages)
            if index or keep is None or keep(url):
                target.append(url)
                if limit and len(target) >= limit:  # a sitemap is either an index or a list of pages
                    break
    except ElementTree.ParseError as exc:
        log.warning("sitemap: invalid XML: %s", exc)
        return Sitemap()
    return out


def _locs(data: bytes) -> Iterator[tuple[bool, str]]:
    """(in a sitemap index?, URL) for each ``<loc>`` of an entry, in order; elements are dropped once read."""
    parser = ElementTree.XMLPullParser(events=("start", "end"))  # type: ignore[var-annotated]
    depth, index = 0, False
    root: ElementTree.Element | None = None
    step = 1 << 16
    for at in range(0, len(data), step):
        parser.feed(data[at : at + step])
        # Only start and end events were asked for: each comes with its element.
        for event, elem in cast(Iterator[tuple[str, ElementTree.Element]], parser.read_events()):
            if event == "start":
                depth += 1
                if root is None:
                    root, index = elem, _local(elem.tag) == "sitemapindex"
                continue
            depth -= 1
            if depth == 2 and _local(elem.tag) == "loc" and elem.text and elem.text.strip():
                yield index, elem.text.strip()
            elif depth == 1 and root is not None:
                root.clear()  # the entry is read: keep no tree of a large sitemap
    parser.close()
