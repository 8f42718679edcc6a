"""The crawler against real HTTP servers on 127.0.0.1: a hostile scripted site, and the LCEL docs site."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys
from datetime import datetime
from email.utils import format_datetime
from pathlib import Path

import pytest

from ragline.config import ParseSettings
from ragline.sources.crawl import CrawlSettings, crawl
from ragline.sources.fetch import retry_after
from ragline.sources.pagestore import MANIFEST, load_crawled, read_manifest
from ragline.sources.robots import RobotsPolicy, parse_sitemap
from ragline.sources.urls import Scope, canonical_url, extract_links, normalize_url, page_file

from .crawl_server import Reply, SiteServer, StaticServer, html, sequence

# Small timeouts and backoffs keep every test bounded to a few seconds.
FAST = CrawlSettings(timeout=0.5, retries=2, backoff=0.05, max_backoff=5, rate_per_host=0, concurrency=4)
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64)
TEXT = {"Content-Type": "text/plain"}


# ----------------------------------------------------------------------------- URLs


@pytest.mark.parametrize(
    ("url", "canonical"),
    [
        ("HTTP://Docs.Example.COM:80/a/b/", "http://docs.example.com/a/b"),
        ("https://docs.example.com:443/a/b#intro", "https://docs.example.com/a/b"),
        ("https://docs.example.com/a/b/index.html", "https://docs.example.com/a/b"),
        ("https://docs.example.com/a/./c/../b/", "https://docs.example.com/a/b"),
        ("https://docs.example.com/a/b?utm_source=x&b=2&a=1&fbclid=z", "https://docs.example.com/a/b?a=1&b=2"),
        ("https://docs.example.com/%7Euser/a%2fb", "https://docs.example.com/~user/a%2Fb"),
        ("https://docs.example.com", "https://docs.example.com/"),
        ("https://docs.example.com:8443/index.htm", "https://docs.example.com:8443/"),
    ],
)
def test_canonical_url(url: str, canonical: str) -> None:
    assert canonical_url(url) == canonical


def test_normalize_keeps_the_trailing_slash_to_request() -> None:
    assert normalize_url("https://x.org/docs/index.html#a") == "https://x.org/docs/"
    with pytest.raises(ValueError):
        normalize_url("ftp://x.org/file")


def test_scope_is_scheme_host_and_path_prefix_widened_and_narrowed_by_globs() -> None:
    s = Scope.from_start("https://x.org/docs/guide/")
    assert s.contains("https://x.org/docs/guide/a/b") and s.contains("https://x.org/docs/guide")
    assert not s.contains("https://x.org/docs/guidebook") and not s.contains("https://x.org/docs/")
    assert not s.contains("http://x.org/docs/guide/a") and not s.contains("https://y.org/docs/guide/a")
    assert Scope.from_start("https://x.org/docs/page.html").prefix == "/docs/"
    assert Scope.from_start("https://x.org/docs/guide").prefix == "/docs/guide/"
    wide = Scope.from_start("https://x.org/docs/guide/", include=["https://x.org/api/*"], exclude=["*/old/*"])
    assert wide.contains("https://x.org/api/v1") and not wide.contains("https://x.org/docs/guide/old/a")


def test_page_files_follow_the_url_and_never_collide() -> None:
    assert page_file("https://x.org/docs/guide/") == "x.org/docs/guide/index.html"
    assert page_file("https://x.org/docs/guide") == "x.org/docs/guide/index.html"
    assert page_file("http://127.0.0.1:8000/a/page.html") == "127.0.0.1_8000/a/page.html"
    urls = [
        "https://x.org/a?page=1",
        "https://x.org/a?page=2",
        "https://x.org/a b",
        "https://x.org/a_b",
        "https://x.org/" + "long" * 60,
        "https://x.org/" + "long" * 61,
    ]
    names = {page_file(u) for u in urls}
    assert len(names) == len(urls)


def test_extract_links_honours_base_and_meta_robots() -> None:
    page = '<head><base href="/base/"></head><a href="x#frag">x</a><a href="mailto:a@b">m</a><a href="#top">t</a>'
    assert extract_links(page, "https://x.org/a/").links == ["https://x.org/base/x"]
    shy = extract_links('<meta name="Robots" content="noindex, NOFOLLOW"><a href="/x">x</a>', "https://x.org/")
    assert shy.links == [] and shy.nofollow and shy.noindex


def test_retry_after_reads_seconds_and_http_dates() -> None:
    assert retry_after("3") == 3.0
    assert retry_after(None) is None and retry_after("soon") is None
    later = datetime.fromtimestamp(datetime.now().timestamp() + 30).astimezone()
    assert 25 < (retry_after(format_datetime(later, usegmt=False)) or 0) <= 30


def test_sitemaps_plain_gzip_index_and_broken() -> None:
    urlset = (
        b'<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        b"<url><loc> https://x.org/a </loc></url><url><loc>https://x.org/b</loc><lastmod>2024-01-01</lastmod></url>"
        b"</urlset>"
    )
    assert parse_sitemap(urlset, 10_000).pages == ["https://x.org/a", "https://x.org/b"]
    assert parse_sitemap(gzip.compress(urlset), 10_000).pages == ["https://x.org/a", "https://x.org/b"]
    index = b"<sitemapindex><sitemap><loc>https://x.org/s1.xml</loc></sitemap></sitemapindex>"
    assert parse_sitemap(index, 10_000).sitemaps == ["https://x.org/s1.xml"]
    assert parse_sitemap(b"<urlset><url><loc>", 10_000).pages == []


def test_robots_policy() -> None:
    policy = RobotsPolicy.parse(
        "User-agent: *\nDisallow: /private/\nCrawl-delay: 2\nSitemap: https://x.org/s.xml", "ragline/0.1"
    )
    assert not policy.allows("https://x.org/private/a") and policy.allows("https://x.org/a")
    assert policy.crawl_delay == 2 and policy.sitemaps == ["https://x.org/s.xml"]
    assert RobotsPolicy.for_status(404).allows("https://x.org/a")
    assert not RobotsPolicy.for_status(403).allows("https://x.org/a")
    assert not RobotsPolicy.for_status(503).allows("https://x.org/a")
    assert not RobotsPolicy.for_status(429).allows("https://x.org/a")


# ----------------------------------------------------------------------------- a hostile site


def _hostile_routes() -> dict[str, Reply | object]:
    return {
        "/docs/": Reply(
            body=html(
                "Home",
                "a",
                "a/",
                "a#part",
                "a?utm_source=news",
                "/docs/index.html",
                "throttled",
                "flaky",
                "broken",
                "slow",
                "huge",
                "streamed",
                "image",
                "pic.png",
                "loop1",
                "away",
                "moved",
                "private/secret",
                "missing",
                "/blog/post",
                "http://elsewhere.invalid/docs/",
                "mailto:someone@example.com",
            )
        ),
        "/docs/a": Reply(body=html("A", "/docs/"), headers={"Content-Type": "text/html", "ETag": '"v1"'}),
        "/docs/throttled": sequence(
            Reply(429, "slow down", headers={**TEXT, "Retry-After": "1"}), Reply(body=html("Throttled"))
        ),
        "/docs/flaky": sequence(Reply(500, "oops", headers=TEXT), Reply(body=html("Flaky"))),
        "/docs/broken": Reply(500, "always down", headers=TEXT),
        "/docs/slow": Reply(body=html("Slow"), delay=2.0),
        "/docs/huge": Reply(body="<html><body>" + "x" * 100_000),
        "/docs/streamed": Reply(body="<html><body>" + "y" * 100_000, content_length=False),
        "/docs/image": Reply(body=PNG, headers={"Content-Type": "image/png"}),
        "/docs/pic.png": Reply(body=PNG, headers={"Content-Type": "image/png"}),
        "/docs/loop1": Reply(302, headers={"Location": "/docs/loop2"}),
        "/docs/loop2": Reply(302, headers={"Location": "/docs/loop1"}),
        "/docs/away": Reply(301, headers={"Location": "/blog/landing"}),
        "/docs/moved": Reply(301, headers={"Location": "/docs/a/"}),
        "/docs/private/secret": Reply(body=html("Secret")),
        "/docs/from-sitemap": Reply(body=html("Only in the sitemap")),
        "/blog/post": Reply(body=html("Blog")),
        "/blog/listed": Reply(body=html("Blog")),
        "/blog/landing": Reply(body=html("Blog")),
    }


def test_crawl_survives_a_hostile_site_and_stays_in_scope(tmp_path: Path) -> None:
    routes = _hostile_routes()
    site = SiteServer(routes)  # type: ignore[arg-type]
    routes["/robots.txt"] = Reply(
        body=f"User-agent: *\nDisallow: /docs/private/\nSitemap: {site.base}/sitemap.xml\n", headers=TEXT
    )
    routes["/sitemap.xml"] = Reply(
        body="<urlset>"
        + "".join(f"<url><loc>{site.base}{p}</loc></url>" for p in ("/docs/from-sitemap", "/blog/listed", "/docs/"))
        + "</urlset>",
        headers={"Content-Type": "application/xml"},
    )
    with site:
        report = crawl(f"{site.base}/docs/", tmp_path, FAST.model_copy(update={"max_bytes": 20_000}))

    failed = {p.url.removeprefix(site.base): p.reason for p in report.failures}
    assert failed.pop("/docs/broken") == "HTTP 500 after 3 attempts"
    assert failed.pop("/docs/slow") == "timeout after 0.5s after 3 attempts"
    assert failed.pop("/docs/huge") == "too big: 100012 bytes > max_bytes 20000"
    assert failed.pop("/docs/streamed") == "too big: over max_bytes 20000"
    assert failed.pop("/docs/image") == "no parser for image/png"
    assert failed.pop("/docs/away") == f"redirected out of scope to {site.base}/blog/landing"
    assert failed.pop("/docs/missing") == "HTTP 404"
    b = site.base
    assert failed.pop("/docs/loop1") == f"redirect loop: {b}/docs/loop1 -> {b}/docs/loop2 -> {b}/docs/loop1"
    assert failed == {}
    assert [(p.url.removeprefix(site.base), p.reason) for p in report.skipped] == [
        ("/docs/private/secret", "disallowed by robots.txt")
    ]

    stored = {e.url.removeprefix(site.base) for e in read_manifest(tmp_path)}
    assert stored == {"/docs", "/docs/a", "/docs/throttled", "/docs/flaky", "/docs/from-sitemap"}
    assert report.new == 5 and report.complete and report.sitemap_urls == 2  # /blog/listed is out of scope

    # The server's log: nothing out of scope, nothing disallowed, each page once, retries as scripted.
    paths = site.paths()
    assert all(p in ("/robots.txt", "/sitemap.xml") or p.startswith("/docs/") for p in paths), paths
    assert not any(p.startswith("/docs/private") or p == "/docs/pic.png" or "?" in p for p in paths), paths
    assert paths.count("/docs/a") == 1 and "/docs/a/" not in paths and "/docs/index.html" not in paths
    assert paths.count("/docs/flaky") == 2 and paths.count("/docs/broken") == 3 and paths.count("/docs/slow") == 3
    throttled = site.requests("/docs/throttled")
    assert len(throttled) == 2 and throttled[1].at - throttled[0].at >= 0.95  # Retry-After: 1 honoured
    assert all(r.headers["user-agent"].startswith("ragline/") for r in site.log)


def test_stored_pages_and_manifest(tmp_path: Path) -> None:
    routes = {
        "/docs/": Reply(body=html("Home", "a?b=2&a=1", "guide/")),
        "/docs/a": Reply(body=html("Query page")),
        "/docs/guide/": Reply(
            body=html("Guide"), headers={"Content-Type": "text/html", "Last-Modified": "Mon, 01 Jan 2024 00:00:00 GMT"}
        ),
    }
    with SiteServer(routes) as site:  # type: ignore[arg-type]
        report = crawl(f"{site.base}/docs/", tmp_path, FAST)
    assert report.new == 3 and not report.failures
    entries = {e.url.removeprefix(site.base): e for e in read_manifest(tmp_path)}
    assert set(entries) == {"/docs", "/docs/a?a=1&b=2", "/docs/guide"}
    guide = entries["/docs/guide"]
    assert guide.final_url == f"{site.base}/docs/guide/" and guide.status == 200
    assert guide.headers == {"content-type": "text/html", "last-modified": "Mon, 01 Jan 2024 00:00:00 GMT"}
    assert datetime.fromisoformat(guide.fetched_at).tzinfo is not None
    assert guide.file.endswith("/docs/guide/index.html")
    assert "~" in entries["/docs/a?a=1&b=2"].file  # a query gets a hash in its file name
    for e in entries.values():
        data = (tmp_path / e.file).read_bytes()
        assert hashlib.sha256(data).hexdigest() == e.sha256 and len(data) == e.bytes


def test_recrawl_is_conditional_keeps_failed_pages_and_drops_gone_ones(tmp_path: Path) -> None:
    routes: dict[str, Reply] = {
        "/docs/": Reply(body=html("Home", "a", "b", "c")),
        "/docs/a": Reply(body=html("A"), headers={"Content-Type": "text/html", "ETag": '"v1"'}),
        "/docs/b": Reply(body=html("B")),
        "/docs/c": Reply(body=html("C")),
    }
    with SiteServer(routes) as site:  # type: ignore[arg-type]
        first = crawl(f"{site.base}/docs/", tmp_path, FAST)
        assert first.new == 4
        b_file = next(e.file for e in read_manifest(tmp_path) if e.url.endswith("/docs/b"))
        routes["/docs/b"] = Reply(404, "gone", headers=TEXT)
        routes["/docs/c"] = Reply(503, "down", headers=TEXT)
        second = crawl(f"{site.base}/docs/", tmp_path, FAST)
        a_requests = site.requests("/docs/a")

    assert (second.new, second.changed, second.unchanged, second.not_modified) == (0, 0, 1, 1)
    assert second.stale == 1 and second.dropped == 1
    assert a_requests[1].headers.get("if-none-match") == '"v1"'
    assert {p.url.removeprefix(site.base): p.reason for p in second.failures} == {
        "/docs/b": "HTTP 404",
        "/docs/c": "HTTP 503 after 3 attempts",
    }
    entries = {e.url.removeprefix(site.base): e for e in read_manifest(tmp_path)}
    assert set(entries) == {"/docs", "/docs/a", "/docs/c"}
    assert entries["/docs/c"].stale == "HTTP 503 after 3 attempts" and entries["/docs/a"].last_status == 304
    assert not (tmp_path / b_file).exists()

    loaded = list(load_crawled(tmp_path, ParseSettings()))
    assert sorted(item.document.title for item in loaded if item.document) == ["A", "C", "Home"]


def test_limits_on_pages_and_depth(tmp_path: Path) -> None:
    routes = {"/docs/": Reply(body=html("Home", "1", "x1", "x2", "x3"))}
    routes |= {f"/docs/{n}": Reply(body=html(f"Level {n}", f"/docs/{n + 1}")) for n in range(1, 6)}
    routes |= {f"/docs/x{n}": Reply(body=html(f"X{n}")) for n in range(1, 4)}
    with SiteServer(routes) as site:  # type: ignore[arg-type]
        deep = crawl(f"{site.base}/docs/", tmp_path / "deep", FAST.model_copy(update={"max_depth": 2}))
        few = crawl(f"{site.base}/docs/", tmp_path / "few", FAST.model_copy(update={"max_pages": 3}))
    assert {e.url.removeprefix(site.base) for e in read_manifest(tmp_path / "deep")} == {
        "/docs",
        "/docs/1",
        "/docs/2",
        "/docs/x1",
        "/docs/x2",
        "/docs/x3",
    }
    assert deep.over_limit == 1  # /docs/3, seen at depth 3 and not fetched
    assert few.pages == 3 and few.over_limit >= 2


def test_include_and_exclude_patterns_move_the_scope(tmp_path: Path) -> None:
    routes = {
        "/docs/": Reply(body=html("Home", "keep", "old/page", "/api/ref", "/blog/post")),
        "/docs/keep": Reply(body=html("Keep")),
        "/docs/old/page": Reply(body=html("Old")),
        "/api/ref": Reply(body=html("API")),
        "/blog/post": Reply(body=html("Blog")),
    }
    with SiteServer(routes) as site:  # type: ignore[arg-type]
        settings = FAST.model_copy(update={"include": [f"{site.base}/api/*"], "exclude": ["*/old/*"]})
        crawl(f"{site.base}/docs/", tmp_path, settings)
        paths = set(site.paths())
    assert {"/docs/", "/docs/keep", "/api/ref"} <= paths
    assert "/docs/old/page" not in paths and "/blog/post" not in paths


def test_redirects_inside_the_scope_are_followed_once(tmp_path: Path) -> None:
    routes = {
        "/docs": Reply(301, headers={"Location": "/docs/"}),  # the start URL itself redirects
        "/docs/": Reply(body=html("Home", "old", "new")),
        "/docs/old": Reply(301, headers={"Location": "/docs/new"}),
        "/docs/new": Reply(body=html("New")),
    }
    with SiteServer(routes) as site:  # type: ignore[arg-type]
        report = crawl(f"{site.base}/docs", tmp_path, FAST.model_copy(update={"concurrency": 1}))
        paths = site.paths()
    assert report.pages == 2 and not report.failures and paths.count("/docs/new") == 1
    assert {e.final_url.removeprefix(site.base) for e in read_manifest(tmp_path)} == {"/docs/", "/docs/new"}


def test_robots_txt_can_forbid_everything(tmp_path: Path) -> None:
    routes = {"/robots.txt": Reply(body="User-agent: ragline\nDisallow: /\n", headers=TEXT), "/docs/": Reply(body="x")}
    with SiteServer(routes) as site:  # type: ignore[arg-type]
        report = crawl(f"{site.base}/docs/", tmp_path, FAST)
        ignored = crawl(f"{site.base}/docs/", tmp_path / "ignored", FAST.model_copy(update={"robots": False}))
        paths = site.paths()
    assert report.pages == 0 and report.skipped[0].reason == "disallowed by robots.txt"
    assert ignored.pages == 1 and paths.count("/docs/") == 1 and paths.count("/robots.txt") == 1


# ----------------------------------------------------------------------------- the LCEL site, through the CLI


def _ragline(*args: str, data_dir: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ragline.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "RAGLINE_DATA_DIR": str(data_dir), **(env or {})},
        timeout=600,
    )


def _lcel_paths(corpora: Path) -> set[str]:
    pages = json.loads((corpora / "langchain-lcel" / "pages.json").read_text(encoding="utf-8"))
    return {p["url_path"] for p in pages}


def test_crawl_lcel_site_fetches_its_26_pages_once_then_nothing(corpora: Path, tmp_path: Path) -> None:
    expected = _lcel_paths(corpora)
    assert len(expected) == 26
    out = tmp_path / "pages"
    with StaticServer(corpora / "langchain-lcel" / "site", tmp_path / "server.log") as server:
        start = f"{server.base}/docs/expression_language/"
        # http.server listens with a backlog of 5: more connections at once wait a SYN retry (1 s).
        args = ("--out", str(out), "--rate", "0", "--concurrency", "4", "--json")
        run = _ragline("crawl", start, *args, data_dir=tmp_path / "data")
        assert run.returncode == 0, run.stderr
        first = json.loads(run.stdout)
        log_first = server.requests()
        run = _ragline("crawl", start, *args, data_dir=tmp_path / "data")
        assert run.returncode == 0, run.stderr
        second = json.loads(run.stdout)
        log_second = server.requests()[len(log_first) :]

    assert first["new"] == 26 and first["failures"] == [] and first["skipped"] == []
    fetched = [path for path, status in log_first if status == 200]
    assert sorted(fetched) == sorted(expected)  # each page once, nothing else
    allowed = {"/robots.txt", "/sitemap.xml"}
    assert all(p in allowed or p.startswith("/docs/expression_language/") for p, _ in log_first), log_first
    assert all(p in allowed or p.startswith("/docs/expression_language/") for p, _ in log_second), log_second

    assert (second["new"], second["changed"], second["unchanged"], second["not_modified"]) == (0, 0, 0, 26)
    assert second["bytes"] == 0 and not [p for p, s in log_second if s == 200]
    assert len(read_manifest(out)) == 26 and (out / MANIFEST).is_file()


@pytest.mark.slow
def test_ingest_a_url_crawls_and_indexes_then_writes_nothing(corpora: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"  # a private copy: a page is deleted below
    shutil.copytree(corpora / "langchain-lcel" / "site", site)
    data = tmp_path / "data"
    # The int8 ONNX MiniLM loads in a second where torch takes ten: three ingests and a search stay quick.
    env = {"RAGLINE_CRAWL__RATE_PER_HOST": "0", "RAGLINE_CRAWL__CONCURRENCY": "4", "RAGLINE_EMBEDDING__BACKEND": "onnx"}
    with StaticServer(site, tmp_path / "server.log") as server:
        start = f"{server.base}/docs/expression_language/"
        runs = []
        for step in range(3):
            if step == 2:
                shutil.rmtree(site / "docs/expression_language/how_to/routing")
            run = _ragline("ingest", start, "--data-dir", str(data), "--json", data_dir=data, env=env)
            assert run.returncode == 0, run.stderr
            runs.append(json.loads(run.stdout))
    r1, r2, r3 = runs
    # Every page is crawled and read; the parser may find no text in a page that is only a list of cards.
    assert r1["documents"] == r1["added"] >= 25 and r1["documents"] + len(r1["skipped"]) == 26
    assert all(s["reason"].startswith("empty") for s in r1["skipped"]), r1["skipped"]
    assert (r2["added"], r2["updated"], r2["deleted"], r2["chunks_written"]) == (0, 0, 0, 0)
    assert r2["unchanged"] == r1["documents"]
    # A page gone from the site (404) is gone from the index.
    assert (r3["added"], r3["updated"], r3["deleted"], r3["unchanged"]) == (0, 0, 1, r1["documents"] - 1)
    assert {"source": f"{start}how_to/routing/", "reason": "crawl: HTTP 404"} in r3["skipped"]

    search = _ragline("search", "fallbacks when the LLM API errors", "--json", data_dir=data, env=env)
    assert search.returncode == 0, search.stderr
    sources = {h["source"].split("#")[0] for h in json.loads(search.stdout)["hits"]}
    # The pages' canonical links name another host (python.langchain.com): outside the crawl's scope, so
    # each page keeps the URL that served it, and cannot stand in for a page of another site.
    assert sources and all(s.startswith(start) for s in sources), sources
    assert f"{start}how_to/fallbacks/" in sources


def test_cli_summary_lists_failures_with_reasons(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from ragline.cli import app
    from ragline.errors import SourceError

    routes = {
        "/docs/": Reply(body=html("Home", "ok", "broken", "missing")),
        "/docs/ok": Reply(body=html("OK")),
        "/docs/broken": Reply(500, "down", headers=TEXT),
    }
    runner = CliRunner()
    with SiteServer(routes) as site:  # type: ignore[arg-type]
        args = ["crawl", f"{site.base}/docs/", "--out", str(tmp_path / "pages"), "--rate", "0", "--retries", "1"]
        env = {"RAGLINE_DATA_DIR": str(tmp_path / "data")}
        result = runner.invoke(app, args, env=env)
    assert result.exit_code == 0, result.output
    assert "2 pages (2 new, 0 changed, 0 unchanged, 0 not modified)" in result.output
    assert f"failed {site.base}/docs/broken: HTTP 500 after 2 attempts" in result.output
    assert f"failed {site.base}/docs/missing: HTTP 404" in result.output

    dead = runner.invoke(app, ["crawl", "http://127.0.0.1:9/docs/", "--out", str(tmp_path / "none"), "--retries", "0"])
    assert isinstance(dead.exception, SourceError)
