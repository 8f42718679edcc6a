"""HTTP for one crawl: GETs with retries and backoff on timeouts, connection errors, 429 and 5xx (honouring
Retry-After), a request rate per host (slowed by robots.txt's Crawl-delay and by Retry-After), bodies read raw
with a byte bound and decoded with a bound on their expansion, the parse kind of each page chosen before its body
is read (``kinds``), and each host's robots.txt fetched once.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import time
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol
from urllib.parse import urljoin

import httpx

from ragline.config import CrawlSettings
from ragline.sources.decode import TooBig, UnsupportedEncoding, decode, decode_prefix
from ragline.sources.kinds import media_type, response_kind
from ragline.sources.robots import RobotsPolicy
from ragline.sources.urls import host_of, normalize_url

log = logging.getLogger(__name__)

REDIRECTS = frozenset({301, 302, 303, 307, 308})
MAX_ROBOTS_BYTES = 512_000  # RFC 9309 asks crawlers to parse at least 500 KiB; what is past it is ignored
MAX_ROBOTS_REDIRECTS = 5  # RFC 9309 section 2.3.1.2: follow at least five, on any host


class Counters(Protocol):
    """Where the fetcher counts its requests and the bytes of the bodies it decoded (the crawl's report)."""

    requests: int
    bytes: int


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
class Response:
    """One GET's outcome: a status and headers, the decoded body of a 200, or why it failed."""

    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)  # names lower-cased; X-Robots-Tag lines kept apart by \n
    body: bytes = b""  # as received (decoded from its Content-Encoding): binary formats stay bytes
    error: str | None = None  # set when the request failed for good (after retries)
    kind: str | None = None  # the parse kind of a page (``kinds.response_kind``)
    truncated: bool = False  # the body was cut at the byte bound (robots.txt only)


class Refused(Exception):
    """A response the crawler will not read: no parser for it, or too big."""


class Fetcher:
    """The crawl's HTTP side; ``counters`` (the crawl's report) counts requests and bytes."""

    def __init__(self, settings: CrawlSettings, client: httpx.AsyncClient, counters: Counters) -> None:
        self.s = settings
        self.client = client
        self.report = counters
        self.robots: dict[str, asyncio.Task[RobotsPolicy]] = {}
        self.interval: dict[str, float] = {}  # seconds between requests to a host
        self.next_slot: dict[str, float] = {}  # when a host may be asked next (monotonic)

    async def request(
        self, url: str, headers: dict[str, str], *, page: bool, max_bytes: int | None = None, truncate: bool = False
    ) -> Response:
        """GET with retries on timeouts, connection errors, 429 and 5xx; the last failure becomes ``error``.

        A body over ``max_bytes`` is refused, or with ``truncate`` cut to its first ``max_bytes``."""
        s, host = self.s, host_of(url)
        attempts = s.retries + 1
        reason, status = "", None
        wait: float | None
        for attempt in range(attempts):
            await self._slot(host)
            self.report.requests += 1
            try:
                async with asyncio.timeout(s.timeout):
                    resp = await self._once(url, headers, page, max_bytes or s.max_bytes, truncate)
            except (TimeoutError, httpx.TimeoutException):
                reason, status, wait = f"timeout after {s.timeout:g}s", None, None
            except httpx.TransportError as exc:
                reason, status, wait = f"connection failed: {exc or type(exc).__name__}", None, None
            except Refused as exc:
                return Response(status=200, error=str(exc))
            except httpx.InvalidURL as exc:  # httpx reads a redirect's Location even when not following it
                return Response(None, error=f"an unusable redirect: {exc}")
            else:
                if resp.status is None or (resp.status != 429 and resp.status < 500):
                    return resp
                reason, status = f"HTTP {resp.status}", resp.status
                wait = retry_after(resp.headers.get("retry-after"))
            if attempt == attempts - 1:
                break
            if wait is not None and wait > s.max_backoff:
                return Response(status, error=f"{reason}, Retry-After {wait:g}s is over max_backoff")
            delay = wait if wait is not None else min(s.max_backoff, s.backoff * 2**attempt * random.uniform(0.5, 1))
            if wait is not None or status == 429:
                # The server asked the whole host to slow down, not just this page: every worker waits.
                self.next_slot[host] = max(self.next_slot.get(host, 0.0), time.monotonic() + delay)
            else:
                await asyncio.sleep(delay)
        suffix = f" after {attempts} attempts" if attempts > 1 else ""
        return Response(status, error=reason + suffix)

    async def _once(self, url: str, headers: dict[str, str], page: bool, max_bytes: int, truncate: bool) -> Response:
        resp = await self.client.send(self.client.build_request("GET", url, headers=headers), stream=True)
        try:
            got = {k.lower(): v for k, v in resp.headers.items()}
            if tags := resp.headers.get_list("x-robots-tag"):
                got["x-robots-tag"] = "\n".join(tags)  # a user agent's name scopes only the rest of its own line
            if resp.status_code != 200:
                return Response(resp.status_code, got)
            kind = None
            if page:
                kind = response_kind(got.get("content-type", ""), url, self.s.content_types)
                if kind is None:
                    raise Refused(f"no parser for {media_type(got.get('content-type', ''))}")
            declared = got.get("content-length", "")
            if not truncate and declared.isdigit() and int(declared) > max_bytes:
                raise Refused(f"too big: {declared} bytes > max_bytes {max_bytes}")
            # Raw bytes, bounded, then decoded with a bound on the expansion (a 32 KB zstd page can hold 1 GiB).
            raw = bytearray()
            cut = False
            async for chunk in resp.aiter_raw():
                raw += chunk
                if len(raw) > max_bytes:
                    if not truncate:
                        raise Refused(f"too big: over max_bytes {max_bytes}")
                    del raw[max_bytes:]
                    cut = True
                    break
            try:
                encoding = got.get("content-encoding", "")
                if truncate:
                    body, more = decode_prefix(bytes(raw), encoding, max_bytes)
                    cut = cut or more
                else:
                    body = decode(bytes(raw), encoding, max_bytes)
            except TooBig:
                raise Refused(f"too big: decodes to over max_bytes {max_bytes}") from None
            except UnsupportedEncoding as e:
                raise Refused(f"unsupported content encoding {e}") from None
            except zlib.error as e:
                raise Refused(f"broken {got.get('content-encoding')} body: {e}") from None
            self.report.bytes += len(body)
            return Response(200, got, body, kind=kind, truncated=cut)
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

    async def get(self, url: str, max_bytes: int, *, robots: bool = False) -> Response:
        """A sitemap (redirects followed on the same host only) or, with ``robots``, a robots.txt: up to
        ``MAX_ROBOTS_REDIRECTS`` redirects on any host, and the body cut at ``max_bytes``."""
        hops = MAX_ROBOTS_REDIRECTS if robots else self.s.max_redirects
        for _ in range(hops + 1):
            resp = await self.request(url, {}, page=False, max_bytes=max_bytes, truncate=robots)
            location = resp.headers.get("location")
            if resp.status not in REDIRECTS or not location:
                return resp
            try:
                target = normalize_url(urljoin(url, location))
            except ValueError:
                return Response(resp.status, error=f"bad redirect to {location!r}")
            if not robots and host_of(target) != host_of(url):
                return Response(resp.status, error=f"redirected to another host: {target}")
            url = target
        return Response(None, error="too many redirects")

    def policy(self, host: str) -> asyncio.Task[RobotsPolicy]:
        """The host's robots policy, fetched once however many workers ask at the same time."""
        task = self.robots.get(host)
        if task is None:
            task = self.robots[host] = asyncio.ensure_future(self._fetch_robots(host))
        return task

    async def _fetch_robots(self, host: str) -> RobotsPolicy:
        if not self.s.robots:
            return RobotsPolicy.allow_all()
        resp = await self.get(f"{host}/robots.txt", MAX_ROBOTS_BYTES, robots=True)
        # A redirect that cannot be followed (to file:, to a bad URL, round and round) is one outcome: the file
        # could not be read, so nothing is allowed, whatever status the last hop had.
        if resp.status == 200 and resp.error is None:
            text = resp.body.decode("utf-8", errors="replace")
            policy = RobotsPolicy.parse(text, self.s.user_agent, truncated=resp.truncated)
        elif resp.status is not None and not (resp.error and resp.status in REDIRECTS):
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
