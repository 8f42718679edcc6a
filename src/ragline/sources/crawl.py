"""The web crawler: a documentation site -> its pages on disk (``pagestore``), politely and incrementally.

A crawl stays within the start URL's scheme, host and path prefix (``urls.Scope``), reads robots.txt and the
sitemap first, then walks links breadth-first with a fixed number of workers, a per-host request rate, retries with
backoff on timeouts, 429 and 5xx (honouring Retry-After), and limits on pages, depth and bytes. It follows links to
HTML pages and to any file the parse registry reads (Markdown, reStructuredText, notebooks...), and honours
robots.txt (RFC 9309), X-Robots-Tag and ``<meta name=robots>`` (noindex, nofollow). Pages it has seen before are
asked for conditionally (If-None-Match / If-Modified-Since), so unchanged pages are not downloaded again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

import httpx

from ragline.config import CrawlSettings
from ragline.errors import ConfigError, SourceError
from ragline.records import Loaded
from ragline.sources.decode import ACCEPT_ENCODING
from ragline.sources.fetch import REDIRECTS, Fetcher
from ragline.sources.kinds import worth_fetching
from ragline.sources.pagestore import PageEntry, PageStore, load_crawled
from ragline.sources.report import CrawlProgress, CrawlReport, Problem
from ragline.sources.robots import RobotsPolicy, header_robots_tag, parse_sitemap, product_token
from ragline.sources.urls import PageLinks, Scope, canonical_url, extract_links, host_of, identity, normalize_url

if TYPE_CHECKING:
    from ragline.config import Settings

__all__ = [
    "CrawlProgress",
    "CrawlReport",
    "CrawlSettings",
    "Crawler",
    "Problem",
    "canonical_url",
    "crawl",
    "crawl_documents",
    "crawl_origin",
    "load_crawled",
]

log = logging.getLogger(__name__)

MAX_SITEMAP_BYTES = 50_000_000  # the sitemaps.org limit (uncompressed)
MAX_SITEMAPS = 20  # sitemap files read per crawl (an index can list thousands)


class Crawler:
    """Crawls one site into ``out_dir``; ``progress`` is called after every finished URL."""

    def __init__(
        self,
        out_dir: Path,
        settings: CrawlSettings | None = None,
        *,
        progress: Callable[[CrawlProgress], None] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.out_dir = Path(out_dir)
        self.settings = settings or CrawlSettings()
        self.progress = progress
        self.transport = transport

    async def crawl(self, start_url: str) -> CrawlReport:
        s = self.settings
        client = httpx.AsyncClient(
            headers={"User-Agent": s.user_agent, "Accept-Encoding": ACCEPT_ENCODING},
            follow_redirects=False,  # each hop is checked against the scope and robots.txt
            timeout=httpx.Timeout(s.timeout),
            limits=httpx.Limits(max_connections=s.concurrency, max_keepalive_connections=s.concurrency),
            transport=self.transport,
        )
        async with client:
            return await _Run(s, self.out_dir, start_url, client, self.progress).execute()


class _Run:
    """The state of one crawl."""

    def __init__(
        self,
        settings: CrawlSettings,
        out_dir: Path,
        start_url: str,
        client: httpx.AsyncClient,
        progress: Callable[[CrawlProgress], None] | None,
    ) -> None:
        try:
            self.start = normalize_url(start_url)
        except ValueError as exc:
            raise ConfigError(f"cannot crawl {start_url!r}: {exc}") from None
        self.s = settings
        self.client = client
        self.on_progress = progress
        self.scope = Scope.from_start(self.start, settings.include, settings.exclude)
        origin = canonical_url(self.start)
        self.store = PageStore(out_dir, origin)
        self.report = CrawlReport(start_url=self.start, origin=origin, out_dir=str(out_dir))
        self.fetch = Fetcher(settings, client, self.report)
        self.token = product_token(settings.user_agent)  # whom robots.txt groups and X-Robots-Tag lines name
        self.queue: asyncio.Queue[tuple[str, str, int]] = asyncio.Queue()
        self.claimed: set[str] = set()  # canonical URLs queued or crawled: each page is fetched once
        self.outside: set[str] = set()
        self.limited: set[str] = set()
        self.done = 0
        self.t0 = time.monotonic()

    async def execute(self) -> CrawlReport:
        workers: list[asyncio.Task[None]] = []
        complete = False
        try:
            start_policy = await self.fetch.policy(host_of(self.start))
            if not self._offer(self.start, 0):
                self.report.failures.append(Problem(self.start, "start URL excluded by the exclude patterns"))
            workers = [asyncio.create_task(self._worker()) for _ in range(self.s.concurrency)]
            if self.s.sitemap:
                await self._read_sitemaps(start_policy)
            await self.queue.join()
            complete = True
        finally:
            for w in workers:
                w.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            r = self.report
            r.out_of_scope, r.over_limit, r.complete = len(self.outside), len(self.limited), complete
            r.dropped = self.store.commit(drop_unseen=complete)
            r.seconds = time.monotonic() - self.t0
        return self.report

    # -- the frontier -------------------------------------------------------------------------------------------

    def _offer(self, url: str, depth: int) -> bool:
        """Queue a URL unless already claimed, out of scope, not a page, or over a limit; True when queued."""
        try:
            target = normalize_url(url)
            key = identity(target)
        except ValueError:
            return False
        if key in self.claimed:
            return True
        if not self.scope.contains(target):
            self.outside.add(key)
            return False
        if not worth_fetching(target):
            return False
        if depth > self.s.max_depth or len(self.claimed) >= self.s.max_pages:
            self.limited.add(key)
            return False
        self.claimed.add(key)
        self.queue.put_nowait((target, key, depth))
        return True

    async def _worker(self) -> None:
        while True:
            url, key, depth = await self.queue.get()
            try:
                await self._visit(url, key, depth)
            except Exception as exc:  # one bad page must not stop the crawl
                log.exception("crawling %s failed", url)
                self.report.failures.append(Problem(url, f"crawler error: {type(exc).__name__}: {exc}"))
            finally:
                self.done += 1
                self.queue.task_done()
                self._tick()

    def _tick(self) -> None:
        if self.on_progress is not None:
            r = self.report
            elapsed = time.monotonic() - self.t0
            self.on_progress(CrawlProgress(self.done, r.pages, len(r.failures), self.queue.qsize(), elapsed))

    # -- one page -----------------------------------------------------------------------------------------------

    async def _visit(self, url: str, key: str, depth: int) -> None:
        prev = self.store.previous.get(key)
        if prev is not None and canonical_url(prev.final_url) == key:
            url = prev.final_url  # where the page was last time: no redirect hop to pay again
        chain = [url]
        while True:
            policy = await self.fetch.policy(host_of(url))
            if not policy.allows(url):
                if policy.reason:  # no usable robots.txt (host down, 403...): a failure, not a choice of the site
                    self.report.failures.append(Problem(url, policy.reason))
                else:
                    self.report.skipped.append(Problem(url, "disallowed by robots.txt"))
                return
            resp = await self.fetch.request(url, self.store.conditional_headers(key), page=True)
            if resp.error is not None:
                self._failed(key, url, resp.error, resp.status, depth)
                return
            location = resp.headers.get("location")
            if resp.status not in REDIRECTS or not location:
                break
            try:
                target = normalize_url(urljoin(url, location))
            except ValueError:
                self._failed(key, chain[0], f"bad redirect to {location!r}", resp.status, depth)
                return
            if target in chain:
                self._failed(key, chain[0], f"redirect loop: {' -> '.join([*chain, target])}", resp.status, depth)
                return
            if len(chain) > self.s.max_redirects:
                self._failed(key, chain[0], f"more than {self.s.max_redirects} redirects", resp.status, depth)
                return
            if not self.scope.contains(target):
                self._failed(key, chain[0], f"redirected out of scope to {target}", resp.status, depth)
                return
            new_key = identity(target)
            if new_key != key:
                if new_key in self.claimed:  # another link already leads to that page
                    self.report.duplicates += 1
                    return
                self.claimed.add(new_key)
                key = new_key
            chain.append(target)
            url = target

        if resp.status == 304 and (entry := self.store.keep(key, last_status=304)) is not None:
            # A 304 need not repeat the X-Robots-Tag: the stored one holds unless the answer brings a new one.
            headers = {**entry.headers, **resp.headers}
            links, noindex = self._wishes(self.store.read(entry), url, entry.kind, headers)
            if noindex:
                del self.store.current[key]
                self.report.skipped.append(Problem(url, noindex))
            else:
                self.report.not_modified += 1
            self._follow(links, depth)
        elif resp.status == 200:
            kind = resp.kind or "html"
            links, noindex = self._wishes(resp.body, url, kind, resp.headers)
            if noindex:
                self.report.skipped.append(Problem(url, noindex))
            else:
                change = self.store.save(key, url, 200, resp.headers, resp.body, kind)
                setattr(self.report, change, getattr(self.report, change) + 1)
            self._follow(links, depth)
        else:
            self._failed(key, url, f"HTTP {resp.status}", resp.status, depth)

    def _wishes(self, body: bytes, url: str, kind: str, headers: dict[str, str]) -> tuple[PageLinks, str]:
        """A page's links to follow, and why it must not be indexed ("" when it may be): the X-Robots-Tag
        header and, in HTML, ``<meta name=robots>`` (either one's nofollow empties the links)."""
        tag = header_robots_tag(headers, self.token)
        page = extract_links(body, url, self.token) if kind == "html" else PageLinks([])
        noindex = "noindex (X-Robots-Tag)" if tag.noindex else "noindex (meta robots)" if page.noindex else ""
        if tag.nofollow or page.nofollow:
            return PageLinks([], nofollow=True, noindex=bool(noindex)), noindex
        return page, noindex

    def _follow_stored(self, entry: PageEntry, depth: int) -> None:
        self._follow(self._wishes(self.store.read(entry), entry.final_url, entry.kind, entry.headers)[0], depth)

    def _follow(self, links: PageLinks, depth: int) -> None:
        for link in links.links:
            self._offer(link, depth + 1)  # over max_depth they are only counted

    def _failed(self, key: str, url: str, reason: str, status: int | None, depth: int) -> None:
        """Record a failure; a transient one keeps the previous copy, and the crawl goes on through its links."""
        log.info("failed %s: %s", url, reason)
        self.report.failures.append(Problem(url, reason, status))
        transient = status is None or status == 429 or status >= 500
        if transient and (entry := self.store.keep(key, last_status=status, stale=reason)) is not None:
            self.report.stale += 1
            self._follow_stored(entry, depth)

    # -- robots.txt and sitemaps --------------------------------------------------------------------------------

    async def _read_sitemaps(self, policy: RobotsPolicy) -> None:
        host = host_of(self.start)
        pending = deque(policy.sitemaps or [f"{host}/sitemap.xml"])
        seen: set[str] = set()
        # URLs taken from sitemaps are bounded by max_pages, however many files list however many URLs.
        while pending and len(seen) < MAX_SITEMAPS and self._sitemap_room() > 0:
            try:
                url = normalize_url(pending.popleft())
            except ValueError:
                continue
            if url in seen or host_of(url) != host or not policy.allows(url):
                continue
            seen.add(url)
            resp = await self.fetch.get(url, MAX_SITEMAP_BYTES)
            if resp.status != 200 or resp.error is not None:
                log.info("no sitemap at %s: %s", url, resp.error or f"HTTP {resp.status}")
                continue
            sitemap = parse_sitemap(
                resp.body, MAX_SITEMAP_BYTES, max_pages=self._sitemap_room(), max_sitemaps=MAX_SITEMAPS, keep=self._fits
            )
            pending.extend(sitemap.sitemaps)
            self.report.sitemap_urls += len(sitemap.pages)
            for page in sitemap.pages:
                self._offer(page, 1)

    def _sitemap_room(self) -> int:
        return self.s.max_pages - max(len(self.claimed), self.report.sitemap_urls)

    def _fits(self, url: str) -> bool:
        """Whether a sitemap's URL is one the crawl could request (in scope, a document)."""
        with contextlib.suppress(ValueError):
            return self.scope.contains(target := normalize_url(url)) and worth_fetching(target)
        return False


def _run_sync(coro: Any) -> Any:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    # Called from inside an event loop (a server handler): run on a private loop in a thread.
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def crawl(
    start_url: str,
    out_dir: Path,
    settings: CrawlSettings | None = None,
    *,
    progress: Callable[[CrawlProgress], None] | None = None,
) -> CrawlReport:
    """Crawl ``start_url`` into ``out_dir`` (blocking)."""
    report: CrawlReport = _run_sync(Crawler(out_dir, settings, progress=progress).crawl(start_url))
    return report


def crawl_origin(start_url: str) -> str:
    """The origin recorded on every page of a crawl: its canonical start URL."""
    try:
        return canonical_url(start_url)
    except ValueError as exc:
        raise SourceError(str(exc)) from None


def crawl_documents(start_url: str, settings: Settings, metadata: dict[str, Any] | None = None) -> Iterator[Loaded]:
    """Crawl into ``<data_dir>/crawl`` and load the pages for the ingest engine; failures come as errors.

    Fails (without touching the index) when the crawl got no page at all, e.g. the site is down.
    """

    out = settings.layout.crawl
    report = crawl(start_url, out, settings.crawl)
    log.info(
        "crawled %s: %d pages (%d new, %d changed, %d not modified), %d failures in %.1fs",
        report.start_url,
        report.pages,
        report.new,
        report.changed,
        report.not_modified,
        len(report.failures),
        report.seconds,
    )
    if report.pages == 0 and report.stale == 0:
        why = report.failures[0].reason if report.failures else "no page in scope"
        raise SourceError(f"crawl of {report.start_url} got no page: {why}")
    for problem in report.failures:
        yield Loaded(problem.url, error=f"crawl: {problem.reason}", gone=problem.status in (404, 410))
    for item in load_crawled(out, settings.parse, origin=report.origin):
        if item.document is not None:
            item.document.metadata.update(metadata or {})
            item.document.metadata.setdefault("origin", report.origin)
        yield item
