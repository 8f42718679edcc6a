"""Compressed pages are decoded with a bound: a bomb is refused before it expands, a normal page reads as it
should, whatever the encoding (real HTTP server on 127.0.0.1, the crawler's own client)."""

from __future__ import annotations

import gzip
import tracemalloc
import zlib
from pathlib import Path

import pytest

from ragline.sources.crawl import CrawlSettings, crawl
from ragline.sources.decode import TooBig, UnsupportedEncoding, decode
from ragline.sources.pagestore import read_manifest

from .crawl_server import Reply, SiteServer, html

FAST = CrawlSettings(rate_per_host=0, retries=1, backoff=0.01, timeout=5, robots=False, sitemap=False)
LIMIT = 1_000_000
EXPANDED = 512 * 1024 * 1024  # what each bomb expands to: 512 MiB of zeros


def _deflate(data: bytes, wbits: int) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, wbits)
    return c.compress(data) + c.flush()


def _bomb(encoding: str) -> bytes:
    """EXPANDED bytes of zeros, compressed in pieces (never held whole)."""
    piece = bytes(8 * 1024 * 1024)
    if encoding == "zstd":
        import zstandard

        c = zstandard.ZstdCompressor(level=3).compressobj()
        return b"".join(c.compress(piece) for _ in range(EXPANDED // len(piece))) + c.flush()
    wbits = {"gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}[encoding]
    c = zlib.compressobj(9, zlib.DEFLATED, wbits)
    return b"".join(c.compress(piece) for _ in range(EXPANDED // len(piece))) + c.flush()


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "zstd"])
def test_a_compression_bomb_is_refused_without_expanding(tmp_path: Path, encoding: str) -> None:
    bomb = _bomb(encoding)
    assert len(bomb) < LIMIT  # small on the wire: only the decoded size can refuse it
    page = html("Fine", extra="<p>The turquoise heron sleeps.</p>").encode()
    fine = gzip.compress(page) if encoding == "gzip" else _bomb_free(page, encoding)
    headers = {"Content-Type": "text/html", "Content-Encoding": encoding}
    routes = {
        "/docs/": Reply(body=html("Home", "bomb", "fine")),
        "/docs/bomb": Reply(body=bomb, headers=headers),
        "/docs/fine": Reply(body=fine, headers=headers),
    }
    tracemalloc.start()
    try:
        with SiteServer(routes) as site:  # type: ignore[arg-type]
            report = crawl(f"{site.base}/docs/", tmp_path, FAST.model_copy(update={"max_bytes": LIMIT}))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    failed = {p.url.removeprefix(site.base): p.reason for p in report.failures}
    assert failed == {"/docs/bomb": f"too big: decodes to over max_bytes {LIMIT}"}
    assert peak < 40 * LIMIT, peak  # bounded by the limit, not by the 512 MiB the bomb holds
    entry = next(e for e in read_manifest(tmp_path) if e.url.endswith("/docs/fine"))
    assert b"turquoise heron" in (tmp_path / entry.file).read_bytes()  # a normal page decodes as it should
    served = [r for r in site.log if r.path == "/docs/fine"]
    assert served and "gzip" in served[0].headers.get("accept-encoding", "")


def _bomb_free(page: bytes, encoding: str) -> bytes:
    if encoding == "zstd":
        import zstandard

        return zstandard.ZstdCompressor().compress(page)
    return _deflate(page, zlib.MAX_WBITS)


def test_decode_bounds_every_encoding_and_refuses_what_it_cannot_bound() -> None:
    text = b"hello " * 1000
    assert decode(gzip.compress(text), "gzip", 10_000) == text
    assert decode(_deflate(text, zlib.MAX_WBITS), "deflate", 10_000) == text
    assert decode(_deflate(text, -zlib.MAX_WBITS), "deflate", 10_000) == text  # raw deflate, as some send
    assert decode(gzip.compress(gzip.compress(text)), "gzip, gzip", 10_000) == text
    assert decode(text, "", 10_000) == text and decode(text, "identity", 10_000) == text
    with pytest.raises(TooBig):
        decode(gzip.compress(text), "gzip", 5_000)
    with pytest.raises(UnsupportedEncoding):
        decode(b"\x0b\x02\x80", "br", 10_000)
    with pytest.raises(zlib.error):
        decode(b"not gzip at all", "gzip", 10_000)
