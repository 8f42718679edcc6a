"""Bounds a hostile site cannot push the crawler past: a page nested 200,000 deep is read in linear time and
the crawl goes on; sitemaps listing many thousands of URLs give at most ``max_pages`` of them (real crawler,
real HTTP server on 127.0.0.1)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragline.sources.crawl import CrawlSettings, crawl
from ragline.sources.pagestore import read_manifest
from ragline.sources.robots import parse_sitemap

from .crawl_server import Reply, SiteServer, html

FAST = CrawlSettings(rate_per_host=0, retries=0, timeout=30, robots=False, sitemap=False)
XML = {"Content-Type": "application/xml"}
NESTING = 200_000


# Without the depth cap, link extraction alone takes minutes on this page: the timeout is the failure.
@pytest.mark.timeout(120, method="thread")  # a signal cannot interrupt the C parser
def test_a_page_nested_200000_deep_does_not_stall_the_crawl(tmp_path: Path) -> None:
    deep = (
        "<html><body><main><h1>Deep</h1><p>Before the nest.</p><a href='/docs/c'>c</a>"
        + "<div>" * NESTING
        + "buried"
        + "</div>" * NESTING
        + "<a href='/docs/d'>d</a></main></body></html>"
    )
    routes = {
        "/docs/": Reply(body=html("Home", "deep", "a", "b")),
        "/docs/deep": Reply(body=deep),
        **{f"/docs/{p}": Reply(body=html(p.upper())) for p in "abcd"},
    }
    with SiteServer(routes) as site:  # type: ignore[arg-type]
        report = crawl(f"{site.base}/docs/", tmp_path, FAST.model_copy(update={"max_bytes": 10_000_000}))
    stored = {e.url.removeprefix(site.base) for e in read_manifest(tmp_path)}
    assert stored == {"/docs", "/docs/deep", "/docs/a", "/docs/b", "/docs/c", "/docs/d"}
    assert report.complete and not report.failures


def _urlset(base: str, name: str, count: int) -> str:
    entries = "".join(f"<url><loc>{base}/docs/{name}-{i}</loc></url>" for i in range(count))
    return f'<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{entries}</urlset>'


def test_sitemaps_give_at_most_max_pages_urls(tmp_path: Path) -> None:
    routes: dict[str, Reply] = {"/docs/": Reply(body=html("Home"))}
    site = SiteServer(routes)  # type: ignore[arg-type]
    names = [f"s{i}" for i in range(4)]
    routes["/sitemap.xml"] = Reply(
        body="<sitemapindex>"
        + "".join(f"<sitemap><loc>{site.base}/{n}.xml</loc></sitemap>" for n in names)
        + "</sitemapindex>",
        headers=XML,
    )
    for n in names:
        routes[f"/{n}.xml"] = Reply(body=_urlset(site.base, n, 20_000), headers=XML)
    for i in range(20):
        routes[f"/docs/s0-{i}"] = Reply(body=html(f"S{i}"))
    settings = FAST.model_copy(update={"sitemap": True, "max_pages": 12})
    with site:
        report = crawl(f"{site.base}/docs/", tmp_path, settings)
    assert report.sitemap_urls <= 12 and report.pages == 12 and report.complete
    requested = site.paths()
    assert "/s0.xml" in requested and not any(f"/{n}.xml" in requested for n in names[1:])  # the bound was met


def test_a_sitemap_is_read_as_a_stream_and_stops_at_its_bound() -> None:
    data = _urlset("https://x.org", "p", 50_000).encode()
    outside = (
        "<urlset>" + "<url><loc>https://y.org/q</loc></url>" * 3 + "<url><loc>https://x.org/in</loc></url></urlset>"
    )
    assert len(parse_sitemap(data, len(data), max_pages=10).pages) == 10
    assert len(parse_sitemap(data, len(data)).pages) == 50_000
    kept = parse_sitemap(outside.encode(), 10_000, max_pages=1, keep=lambda u: u.startswith("https://x.org/"))
    assert kept.pages == ["https://x.org/in"]
    # Only an entry's own <loc> counts (not an image's), as before.
    nested = b"<urlset><url><loc>https://x.org/a</loc><image><loc>https://x.org/i.png</loc></image></url></urlset>"
    assert parse_sitemap(nested, 10_000).pages == ["https://x.org/a"]
