"""What a crawl tells: its progress while it runs, and its report (pages by outcome, failures, counters)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(slots=True)
class Problem:
    """A URL the crawl could not use, and why."""

    url: str
    reason: str
    status: int | None = None


@dataclass(slots=True)
class CrawlProgress:
    done: int  # URLs finished, pages or failures
    pages: int
    errors: int
    queued: int
    seconds: float

    @property
    def pages_per_second(self) -> float:
        return self.done / self.seconds if self.seconds > 0 else 0.0


@dataclass(slots=True)
class CrawlReport:
    start_url: str
    origin: str  # canonical start URL: the owner of these pages in the crawl folder and in the index
    out_dir: str
    new: int = 0
    changed: int = 0
    unchanged: int = 0  # downloaded again, same bytes (the server sent no usable validators)
    not_modified: int = 0  # 304: not downloaded
    stale: int = 0  # failed this time; the previous copy is kept
    failures: list[Problem] = field(default_factory=list)
    skipped: list[Problem] = field(default_factory=list)  # robots.txt, noindex: not errors, but not crawled
    out_of_scope: int = 0  # distinct links not followed because they leave the scope
    over_limit: int = 0  # distinct in-scope links not followed because of max_pages / max_depth
    duplicates: int = 0  # redirects onto a page already crawled
    sitemap_urls: int = 0
    dropped: int = 0  # pages of a previous crawl gone from the site, removed from the folder
    requests: int = 0
    bytes: int = 0
    seconds: float = 0.0
    complete: bool = False  # False when interrupted: nothing was dropped then

    @property
    def pages(self) -> int:
        """Pages stored and current (downloaded or confirmed unchanged)."""
        return self.new + self.changed + self.unchanged + self.not_modified

    @property
    def pages_per_second(self) -> float:
        done = self.pages + len(self.failures)
        return done / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(pages=self.pages, pages_per_second=round(self.pages_per_second, 2), seconds=round(self.seconds, 3))
        return out
