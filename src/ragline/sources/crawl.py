"""The web crawler: a documentation site -> HTML pages on disk (``pagestore``), politely and incrementally.

A crawl stays within the start URL's scheme, host and path prefix (``urls.Scope``), reads robots.txt and the
sitemap first, then walks links breadth-first with a fixed number of workers, a per-host request rate, retries with
backoff on timeouts, 429 and 5xx (honouring Retry-After), and limits on pages, depth and bytes. Pages it has seen
before are asked for conditionally (If-None-Match / If-Modified-Since), so unchanged pages are not downloaded again.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

import httpx

from ragline.config import CrawlSettings
from ragline.errors import ConfigError, SourceError
from ragline.records import Loaded
from ragline.sources.decode import ACCEPT_ENCODING, TooBig, UnsupportedEncoding, decode
from ragline.sources.pagestore import PageStore, load_crawled
from ragline.sources.robots import RobotsPolicy, parse_sitemap
from ragline.sources.urls import (
    PageLinks,
    Scope,
    canonical_url,
    extract_links,
    has_skipped_extension,
    host_of,
    identity,
    normalize_url,
)

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

REDIRECTS = frozenset({301, 302, 303, 307, 308})
MAX_ROBOTS_BYTES = 512_000  # RFC 9309 asks crawlers to read at least 500 KiB
MAX_SITEMAP_BYTES = 50_000_000  # the sitemaps.org limit (uncompressed)
MAX_SITEMAPS = 20  # sitemap files read per crawl (an index can list thousands)


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


def retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date); None when absent or invalid."""
    if not value or not value.strip():
        return None
    try:
        return max(0.0, float(value.strip()))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value.strip())
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


@dataclass(slots=True)
class _Response:
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    error: str | None = None  # set when the request failed for good (after retries)


class _Refused(Exception):
    """A response the crawler will not read: not HTML, or too big."""


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
        self.queue: asyncio.Queue[tuple[str, str, int]] = asyncio.Queue()
        self.claimed: set[str] = set()  # canonical URLs queued or crawled: each page is fetched once
        self.outside: set[str] = set()
        self.limited: set[str] = set()
        self.robots: dict[str, asyncio.Task[RobotsPolicy]] = {}
        self.interval: dict[str, float] = {}
        self.next_slot: dict[str, float] = {}
        self.done = 0
        self.t0 = time.monotonic()

    async def execute(self) -> CrawlReport:
        workers: list[asyncio.Task[None]] = []
        complete = False
        try:
            start_policy = await self._policy(host_of(self.start))
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
        if has_skipped_extension(target):
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
            policy = await self._policy(host_of(url))
            if not policy.allows(url, self.s.user_agent):
                if policy.reason:  # no usable robots.txt (host down, 403...): a failure, not a choice of the site
                    self.report.failures.append(Problem(url, policy.reason))
                else:
                    self.report.skipped.append(Problem(url, "disallowed by robots.txt"))
                return
            resp = await self._request(url, self.store.conditional_headers(key), page=True)
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
            self.report.not_modified += 1
            self._follow(extract_links(self.store.read(entry), url), depth)
        elif resp.status == 200:
            links = extract_links(resp.body, url)
            if links.noindex:
                self.report.skipped.append(Problem(url, "noindex (meta robots)"))
            else:
                change = self.store.save(key, url, 200, resp.headers, resp.body)
                setattr(self.report, change, getattr(self.report, change) + 1)
            self._follow(links, depth)
        else:
            self._failed(key, url, f"HTTP {resp.status}", resp.status, depth)

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
            self._follow(extract_links(self.store.read(entry), entry.final_url), depth)

    # -- HTTP ---------------------------------------------------------------------------------------------------

    async def _request(
        self, url: str, headers: dict[str, str], *, page: bool, max_bytes: int | None = None
    ) -> _Response:
        """GET with retries on timeouts, connection errors, 429 and 5xx; the last failure becomes ``error``."""
        s, host = self.s, host_of(url)
        attempts = s.retries + 1
        reason, status = "", None
        wait: float | None
        for attempt in range(attempts):
            await self._slot(host)
            self.report.requests += 1
            try:
                async with asyncio.timeout(s.timeout):
                    resp = await self._once(url, headers, page=page, max_bytes=max_bytes or s.max_bytes)
            except (TimeoutError, httpx.TimeoutException):
                reason, status, wait = f"timeout after {s.timeout:g}s", None, None
            except httpx.TransportError as exc:
                reason, status, wait = f"connection failed: {exc or type(exc).__name__}", None, None
            except _Refused as exc:
                return _Response(status=200, error=str(exc))
            else:
                if resp.status is None or (resp.status != 429 and resp.status < 500):
                    return resp
                reason, status = f"HTTP {resp.status}", resp.status
                wait = retry_after(resp.headers.get("retry-after"))
            if attempt == attempts - 1:
                break
            if wait is not None and wait > s.max_backoff:
                return _Response(status, error=f"{reason}, Retry-After {wait:g}s is over max_backoff")
            delay = wait if wait is not None else min(s.max_backoff, s.backoff * 2**attempt * random.uniform(0.5, 1))
            if wait is not None or status == 429:
                # The server asked the whole host to slow down, not just this page: every worker waits.
                self.next_slot[host] = max(self.next_slot.get(host, 0.0), time.monotonic() + delay)
            else:
                await asyncio.sleep(delay)
        suffix = f" after {attempts} attempts" if attempts > 1 else ""
        return _Response(status, error=reason + suffix)

    async def _once(self, url: str, headers: dict[str, str], *, page: bool, max_bytes: int) -> _Response:
        resp = await self.client.send(self.client.build_request("GET", url, headers=headers), stream=True)
        try:
            got = {k.lower(): v for k, v in resp.headers.items()}
            if resp.status_code != 200:
                return _Response(resp.status_code, got)
            media = got.get("content-type", "").split(";", 1)[0].strip().lower()
            if page and media and media not in self.s.content_types:
                raise _Refused(f"not HTML ({media})")
            declared = got.get("content-length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise _Refused(f"too big: {declared} bytes > max_bytes {max_bytes}")
            # Raw bytes, bounded, then decoded with a bound on the expansion (a 32 KB zstd page can hold 1 GiB).
            raw = bytearray()
            async for chunk in resp.aiter_raw():
                raw += chunk
                if len(raw) > max_bytes:
                    raise _Refused(f"too big: over max_bytes {max_bytes}")
            try:
                body = decode(bytes(raw), got.get("content-encoding", ""), max_bytes)
            except TooBig:
                raise _Refused(f"too big: decodes to over max_bytes {max_bytes}") from None
            except UnsupportedEncoding as e:
                raise _Refused(f"unsupported content encoding {e}") from None
            except zlib.error as e:
                raise _Refused(f"broken {got.get('content-encoding')} body: {e}") from None
            self.report.bytes += len(body)
            return _Response(200, got, body)
        finally:
            await resp.aclose()

    async def _slot(self, host: str) -> None:
        """Wait for this host's next request slot (the per-host rate, robots.txt Crawl-delay, Retry-After)."""
        interval = self.interval.get(host, 1.0 / self.s.rate_per_host if self.s.rate_per_host else 0.0)
        now = time.monotonic()
        at = max(now, self.next_slot.get(host, 0.0))
        self.next_slot[host] = at + interval
        if at > now:
            await asyncio.sleep(at - now)

    async def _get(self, url: str, max_bytes: int) -> _Response:
        """A robots.txt or sitemap: redirects followed on the same host only."""
        for _ in range(self.s.max_redirects + 1):
            resp = await self._request(url, {}, page=False, max_bytes=max_bytes)
            location = resp.headers.get("location")
            if resp.status not in REDIRECTS or not location:
                return resp
            try:
                target = normalize_url(urljoin(url, location))
            except ValueError:
                return _Response(resp.status, error=f"bad redirect to {location!r}")
            if host_of(target) != host_of(url):
                return _Response(resp.status, error=f"redirected to another host: {target}")
            url = target
        return _Response(None, error="too many redirects")

    # -- robots.txt and sitemaps --------------------------------------------------------------------------------

    def _policy(self, host: str) -> asyncio.Task[RobotsPolicy]:
        """The host's robots policy, fetched once however many workers ask at the same time."""
        task = self.robots.get(host)
        if task is None:
            task = self.robots[host] = asyncio.ensure_future(self._fetch_robots(host))
        return task

    async def _fetch_robots(self, host: str) -> RobotsPolicy:
        if not self.s.robots:
            return RobotsPolicy.allow_all()
        resp = await self._get(f"{host}/robots.txt", MAX_ROBOTS_BYTES)
        if resp.status == 200 and resp.error is None:
            policy = RobotsPolicy.parse(resp.body.decode("utf-8", errors="replace"), self.s.user_agent)
        elif resp.status is not None and resp.status != 200:
            policy = RobotsPolicy.for_status(resp.status)
        else:
            policy = RobotsPolicy.blocked(f"robots.txt unreachable: {resp.error}")
        if policy.disallow_all:
            log.warning("%s: everything disallowed: %s", host, policy.reason)
        if policy.crawl_delay:
            # Honoured, up to max_backoff: a Crawl-delay of minutes would make a crawl last days.
            delay = min(policy.crawl_delay, self.s.max_backoff)
            self.interval[host] = max(delay, 1.0 / self.s.rate_per_host if self.s.rate_per_host else 0.0)
        return policy

    async def _read_sitemaps(self, policy: RobotsPolicy) -> None:
        host = host_of(self.start)
        pending = deque(policy.sitemaps or [f"{host}/sitemap.xml"])
        seen: set[str] = set()
        while pending and len(seen) < MAX_SITEMAPS:
            try:
                url = normalize_url(pending.popleft())
            except ValueError:
                continue
            if url in seen or host_of(url) != host or not policy.allows(url, self.s.user_agent):
                continue
            seen.add(url)
            resp = await self._get(url, MAX_SITEMAP_BYTES)
            if resp.status != 200 or resp.error is not None:
                log.info("no sitemap at %s: %s", url, resp.error or f"HTTP {resp.status}")
                continue
            sitemap = parse_sitemap(resp.body, MAX_SITEMAP_BYTES)
            pending.extend(sitemap.sitemaps)
            self.report.sitemap_urls += len(sitemap.pages)
            for page in sitemap.pages:
                self._offer(page, 1)


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
