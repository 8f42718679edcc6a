"""robots.txt and sitemaps: what a site lets a crawler fetch, and which pages it lists. Pure parsing, no I/O."""

from __future__ import annotations

import gzip
import logging
import zlib
from dataclasses import dataclass, field
from urllib.robotparser import RobotFileParser
from xml.etree import ElementTree

log = logging.getLogger(__name__)


@dataclass(slots=True)
class RobotsPolicy:
    """One host's robots.txt, read for one user agent."""

    parser: RobotFileParser | None = None  # None: no rules (no robots.txt, or robots ignored)
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
    def parse(cls, text: str, user_agent: str) -> RobotsPolicy:
        parser = RobotFileParser()
        parser.parse(text.splitlines())
        delay: float | None = None
        raw_delay = parser.crawl_delay(user_agent)
        if raw_delay is not None:
            delay = float(raw_delay)
        rate = parser.request_rate(user_agent)
        if rate is not None and rate.requests > 0:
            delay = max(delay or 0.0, rate.seconds / rate.requests)
        return cls(parser=parser, sitemaps=list(parser.site_maps() or []), crawl_delay=delay)

    @classmethod
    def for_status(cls, status: int) -> RobotsPolicy:
        """No usable robots.txt: 401/403 forbid everything (as ``urllib.robotparser`` does), other 4xx allow it,
        and an unreachable one (5xx) forbids everything (RFC 9309 section 2.3.1.4)."""
        if status in (401, 403):
            return cls.blocked(f"robots.txt answered HTTP {status}")
        if status >= 500:
            return cls.blocked(f"robots.txt unreachable (HTTP {status})")
        return cls.allow_all()

    def allows(self, url: str, user_agent: str) -> bool:
        if self.disallow_all:
            return False
        return self.parser is None or self.parser.can_fetch(user_agent, url)


@dataclass(slots=True)
class Sitemap:
    """A parsed sitemap: page URLs (``<urlset>``) or further sitemaps (``<sitemapindex>``)."""

    pages: list[str] = field(default_factory=list)
    sitemaps: list[str] = field(default_factory=list)


def _local(tag: object) -> str:
    return str(tag).rsplit("}", 1)[-1].lower()


def parse_sitemap(data: bytes, max_bytes: int) -> Sitemap:
    """Parse sitemap XML (gzip-compressed or not); broken XML yields an empty sitemap and a warning."""
    if data[:2] == b"\x1f\x8b":
        try:
            # Bounded decompression: a small gzip can expand without limit.
            data = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data, max_bytes)
        except (zlib.error, gzip.BadGzipFile) as exc:
            log.warning("sitemap: bad gzip: %s", exc)
            return Sitemap()
    try:
        root = ElementTree.fromstring(data)
    except ElementTree.ParseError as exc:
        log.warning("sitemap: invalid XML: %s", exc)
        return Sitemap()
    out = Sitemap()
    target = out.sitemaps if _local(root.tag) == "sitemapindex" else out.pages
    for entry in root:
        for child in entry:
            if _local(child.tag) == "loc" and child.text and child.text.strip():
                target.append(child.text.strip())
    return out
