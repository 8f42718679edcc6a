"""The crawler reads a site's rules as RFC 9309 and the X-Robots-Tag header say, and follows links to every file
kind ragline parses; each test crawls a real HTTP server on 127.0.0.1 and checks its request log."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ragline.chunk import Chunker
from ragline.config import ParseSettings
from ragline.parse import kind_for_media_type
from ragline.sources.crawl import CrawlSettings, crawl
from ragline.sources.fetch import MAX_ROBOTS_BYTES
from ragline.sources.pagestore import load_crawled, read_manifest
from ragline.sources.robots import RobotsPolicy, robots_tag

from .crawl_server import Reply, SiteServer, html, sequence

FAST = CrawlSettings(timeout=2, retries=1, backoff=0.05, max_backoff=5, rate_per_host=0, concurrency=2, sitemap=False)
TEXT = {"Content-Type": "text/plain"}


def _crawl_with_robots(tmp_path: Path, robots: str, routes: dict[str, Reply]) -> tuple[set[str], dict[str, str]]:
    """Crawl /docs/ under ``robots``; the paths the server answered and the crawl's skipped URLs (path -> why)."""
    site = SiteServer({"/robots.txt": Reply(body=robots, headers=TEXT), **routes})
    with site:
        report = crawl(f"{site.base}/docs/", tmp_path, FAST)
        paths = set(site.paths())
    assert not report.failures, report.failures
    return paths, {p.url.removeprefix(site.base): p.reason for p in report.skipped}


def _pages(*paths: str) -> dict[str, Reply]:
    routes = {"/docs/": Reply(body=html("Home", *paths))}
    return routes | {path: Reply(body=html(path)) for path in paths}


# ----------------------------------------------------------------------------- robots.txt rules


def test_the_longest_match_allows_a_folder_inside_a_disallowed_one(tmp_path: Path) -> None:
    robots = "User-agent: *\nDisallow: /docs/guide/\nAllow: /docs/guide/public/\n"
    paths, skipped = _crawl_with_robots(tmp_path, robots, _pages("/docs/guide/public/a", "/docs/guide/secret"))
    assert "/docs/guide/public/a" in paths  # the longer Allow wins over the shorter Disallow listed first
    assert "/docs/guide/secret" not in paths
    assert skipped == {"/docs/guide/secret": "disallowed by robots.txt"}


def test_a_wildcard_rule_blocks_queries_not_the_page(tmp_path: Path) -> None:
    paths, skipped = _crawl_with_robots(
        tmp_path, "User-agent: *\nDisallow: /*?q=\n", _pages("/docs/search", "/docs/search?q=x")
    )
    assert "/docs/search" in paths and "/docs/search?q=x" not in paths
    assert skipped == {"/docs/search?q=x": "disallowed by robots.txt"}


def test_a_dollar_anchors_the_rule_at_the_end_of_the_url(tmp_path: Path) -> None:
    paths, skipped = _crawl_with_robots(
        tmp_path,
        "User-agent: *\nDisallow: /docs/*.html$\n",
        _pages("/docs/print.html", "/docs/print.html?full=1", "/docs/print"),
    )
    assert {"/docs/print.html?full=1", "/docs/print"} <= paths and "/docs/print.html" not in paths
    assert skipped == {"/docs/print.html": "disallowed by robots.txt"}


def test_the_groups_naming_our_product_token_apply_merged_and_no_other(tmp_path: Path) -> None:
    robots = (
        "User-agent: *\nDisallow: /docs/\n\n"
        "User-agent: rag\nDisallow: /docs/\n\n"  # a prefix of our token: not our group
        "User-agent: ragline-news\nDisallow: /docs/\n\n"  # another crawler whose name starts like ours
        "User-agent: RagLine\nDisallow: /docs/private/\n\n"
        "User-agent: otherbot\nDisallow: /docs/\n\n"
        "User-agent: ragline/2.0\nDisallow: /docs/drafts/\n"  # the version is not part of the name
    )
    paths, skipped = _crawl_with_robots(tmp_path, robots, _pages("/docs/a", "/docs/private/p", "/docs/drafts/d"))
    assert {"/docs/", "/docs/a"} <= paths
    assert not {"/docs/private/p", "/docs/drafts/d"} & paths
    assert set(skipped) == {"/docs/private/p", "/docs/drafts/d"}


def test_the_star_group_applies_when_no_group_names_us(tmp_path: Path) -> None:
    robots = "User-agent: otherbot\nDisallow: /\n\nUser-agent: *\nUser-agent: another\nDisallow: /docs/b\n"
    paths, skipped = _crawl_with_robots(tmp_path, robots, _pages("/docs/a", "/docs/b"))
    assert "/docs/a" in paths and "/docs/b" not in paths and set(skipped) == {"/docs/b"}


def test_rules_read_for_one_token() -> None:
    policy = RobotsPolicy.parse(
        "\ufeffDisallow: /orphan\n"  # before any user-agent line: applies to nobody
        "User-agent: ragline\nDisallow: /a\nAllow: /a\nDisallow: /b/\nAllow: /b/*.md$\nCrawl-delay: 3\n"
        "Sitemap: https://x.org/s.xml\n",
        "ragline/0.1 (documentation crawler)",
    )
    assert policy.allows("https://x.org/a")  # equal length: Allow wins the tie
    assert policy.allows("https://x.org/orphan")
    assert policy.allows("https://x.org/b/page.md") and not policy.allows("https://x.org/b/page.md?x=1")
    assert policy.crawl_delay == 3 and policy.sitemaps == ["https://x.org/s.xml"]
    nobody = RobotsPolicy.parse("User-agent: otherbot\nDisallow: /\n", "ragline/0.1")
    assert nobody.allows("https://x.org/a")  # no group for us and no '*' group: no rules
    cut = RobotsPolicy.parse("User-agent: *\nDisallow: /a\nDisallow: /", "ragline", truncated=True)
    assert not cut.allows("https://x.org/a") and cut.allows("https://x.org/b")  # a cut last line is dropped


def test_a_robots_txt_past_the_size_bound_is_read_up_to_it(tmp_path: Path) -> None:
    padding = "# padding\n" * (MAX_ROBOTS_BYTES // 10 + 100)
    robots = f"User-agent: *\nDisallow: /docs/private/\n{padding}Disallow: /docs/past-the-bound\n"
    assert len(robots) > MAX_ROBOTS_BYTES
    paths, skipped = _crawl_with_robots(tmp_path, robots, _pages("/docs/private/x", "/docs/past-the-bound"))
    assert "/docs/" in paths and "/docs/past-the-bound" in paths  # the rest of the file is ignored
    assert "/docs/private/x" not in paths and set(skipped) == {"/docs/private/x"}


def test_a_robots_txt_redirected_to_another_host_is_followed(tmp_path: Path) -> None:
    with SiteServer({"/rules.txt": Reply(body="User-agent: *\nDisallow: /docs/b\n", headers=TEXT)}) as rules:
        routes = {
            "/robots.txt": Reply(301, headers={"Location": f"{rules.base}/rules.txt"}),
            **_pages("/docs/a", "/docs/b"),
        }
        with SiteServer(routes) as site:  # type: ignore[arg-type]
            report = crawl(f"{site.base}/docs/", tmp_path, FAST)
            paths = set(site.paths())
    assert "/docs/a" in paths and "/docs/b" not in paths and report.pages == 2, report.failures


@pytest.mark.parametrize(
    "location", ["file:///etc/passwd", "/robots.txt", "javascript:alert(1)"], ids=["file", "loop", "javascript"]
)
def test_a_robots_txt_whose_redirect_cannot_be_followed_forbids_everything(tmp_path: Path, location: str) -> None:
    """A redirect out of HTTP and a redirect loop are the same outcome: the rules could not be read."""
    routes = {"/robots.txt": Reply(301, headers={"Location": location}), **_pages("/docs/a")}
    with SiteServer(routes) as site:  # type: ignore[arg-type]
        report = crawl(f"{site.base}/docs/", tmp_path, FAST)
        paths = site.paths()
    assert report.pages == 0 and all(p == "/robots.txt" for p in paths), paths
    assert report.failures and report.failures[0].reason.startswith("robots.txt unreachable")


def test_a_throttled_robots_txt_forbids_everything(tmp_path: Path) -> None:
    routes = {"/robots.txt": Reply(429, "slow down", headers={**TEXT, "Retry-After": "0"}), **_pages("/docs/a")}
    with SiteServer(routes) as site:  # type: ignore[arg-type]
        report = crawl(f"{site.base}/docs/", tmp_path, FAST)
        paths = site.paths()
    assert report.pages == 0 and paths == ["/robots.txt", "/robots.txt"]  # asked twice (one retry), then nothing
    assert report.failures[0].reason == "robots.txt unreachable (HTTP 429)"


# ----------------------------------------------------------------------------- X-Robots-Tag and meta robots


def test_robots_tag_values() -> None:
    assert robots_tag(["noindex"], "ragline").noindex and not robots_tag(["noindex"], "ragline").nofollow
    both = robots_tag(["NONE"], "ragline")
    assert both.noindex and both.nofollow
    assert not robots_tag(["googlebot: noindex, nofollow"], "ragline").noindex  # scoped to another crawler
    assert robots_tag(["googlebot: noindex", "nofollow"], "ragline").nofollow  # a separate line applies to all
    assert robots_tag(["RagLine: noindex"], "ragline").noindex
    assert robots_tag(["max-snippet: 20, noindex"], "ragline").noindex  # a valued directive, not a crawler name
    assert not robots_tag(["unavailable_after: Friday, 25-Jun-2010 15:00:00 GMT"], "ragline").noindex


def _tagged(tag: str = "", *links: str, repeated: list[tuple[str, str]] | None = None, etag: str = "") -> Reply:
    headers = {"Content-Type": "text/html"} | ({"X-Robots-Tag": tag} if tag else {}) | ({"ETag": etag} if etag else {})
    return Reply(body=html(tag or "page", *links), headers=headers, repeated=repeated or [])


def test_x_robots_tag_noindex_nofollow_none_and_meta_robots(tmp_path: Path) -> None:
    home = ("hidden", "shy", "none", "scoped", "ours", "split", "meta-shy", "meta-ours", "meta-other")
    routes = {
        "/docs/": Reply(body=html("Home", *home)),
        "/docs/hidden": _tagged("noindex", "hidden-child"),  # not indexed, its links still followed
        "/docs/hidden-child": _tagged(),
        "/docs/shy": _tagged("nofollow", "shy-child", etag='"s1"'),  # indexed, its links not followed
        "/docs/none": _tagged("none", "none-child"),
        "/docs/scoped": _tagged("googlebot: noindex, nofollow", "scoped-child"),  # for another crawler only
        "/docs/scoped-child": _tagged(),
        "/docs/ours": _tagged("ragline: noindex"),
        "/docs/split": _tagged(
            "", "split-child", repeated=[("X-Robots-Tag", "otherbot: noindex"), ("X-Robots-Tag", "nofollow")]
        ),
        "/docs/meta-shy": Reply(body=html("Meta", "meta-child", extra='<meta name="robots" content="nofollow">')),
        "/docs/meta-ours": Reply(body=html("Ours", extra='<meta name="ragline" content="noindex">')),
        "/docs/meta-other": Reply(body=html("Other", "other-child", extra='<meta name="googlebot" content="none">')),
        "/docs/other-child": _tagged(),
    }
    never = {"/docs/shy-child", "/docs/none-child", "/docs/split-child", "/docs/meta-child"}
    with SiteServer(routes) as site:  # type: ignore[arg-type]
        first = crawl(f"{site.base}/docs/", tmp_path, FAST)
        second = crawl(f"{site.base}/docs/", tmp_path, FAST)  # /docs/shy answers 304: its stored header holds
        paths = site.paths()
        shy_checks = site.requests("/docs/shy")

    assert not never & set(paths), paths
    assert {"/docs/hidden-child", "/docs/scoped-child", "/docs/other-child"} <= set(paths)
    assert len(shy_checks) == 2 and shy_checks[1].headers.get("if-none-match") == '"s1"'
    for report in (first, second):
        assert {p.url.removeprefix(site.base): p.reason for p in report.skipped} == {
            "/docs/hidden": "noindex (X-Robots-Tag)",
            "/docs/none": "noindex (X-Robots-Tag)",
            "/docs/ours": "noindex (X-Robots-Tag)",
            "/docs/meta-ours": "noindex (meta robots)",
        }
    assert second.not_modified == 1
    stored = {e.url.removeprefix(site.base) for e in read_manifest(tmp_path)}
    assert stored == {
        "/docs",
        "/docs/hidden-child",
        "/docs/shy",
        "/docs/scoped",
        "/docs/scoped-child",
        "/docs/split",
        "/docs/meta-shy",
        "/docs/meta-other",
        "/docs/other-child",
    }


# ----------------------------------------------------------------------------- documents that are not HTML


NOTEBOOK = {
    "cells": [
        {"cell_type": "markdown", "metadata": {}, "source": ["# Notebook tour\n", "\n", "Cells explain the tour."]},
        {"cell_type": "code", "metadata": {}, "source": ["print('tour')"], "outputs": [], "execution_count": None},
    ],
    "metadata": {},
    "nbformat": 4,
    "nbformat_minor": 5,
}


def test_links_to_markdown_rst_and_notebooks_are_crawled_parsed_and_cited(tmp_path: Path) -> None:
    routes = {
        "/docs/": Reply(body=html("Home", "guide.md", "ref.rst", "tour.ipynb", "notes", "shown.md", "logo.png")),
        "/docs/guide.md": Reply(
            body="# Guide\n\nIntro to the guide.\n\n## Install steps\n\nRun the installer with care.\n",
            headers={"Content-Type": "text/markdown; charset=utf-8"},
        ),
        # Types that say nothing: the extension decides.
        "/docs/ref.rst": Reply(
            body="Reference\n=========\n\nAbout the reference.\n\nOptions\n-------\n\nThe options of the tool.\n",
            headers={"Content-Type": "application/octet-stream"},
        ),
        "/docs/tour.ipynb": Reply(body=json.dumps(NOTEBOOK), headers={"Content-Type": "application/json"}),
        # A decisive type wins over the URL: Markdown with no extension, an HTML rendering of a .md file.
        "/docs/notes": Reply(body="# Notes\n\nLoose notes.\n", headers={"Content-Type": "text/markdown"}),
        "/docs/shown.md": Reply(body=html("Shown")),
        "/docs/logo.png": Reply(body=b"\x89PNG", headers={"Content-Type": "image/png"}),
    }
    with SiteServer(routes) as site:  # type: ignore[arg-type]
        report = crawl(f"{site.base}/docs/", tmp_path, FAST)
        paths = site.paths()
    assert not report.failures and report.new == 6
    assert "/docs/logo.png" not in paths

    kinds = {e.url.removeprefix(site.base): e.kind for e in read_manifest(tmp_path)}
    assert kinds == {
        "/docs": "html",
        "/docs/guide.md": "markdown",
        "/docs/ref.rst": "rst",
        "/docs/tour.ipynb": "notebook",
        "/docs/notes": "markdown",
        "/docs/shown.md": "html",
    }
    loaded = list(load_crawled(tmp_path, ParseSettings()))
    assert [item.error for item in loaded if item.error] == []
    docs = {item.fallback_source.removeprefix(site.base): item.document for item in loaded}
    assert all(doc is not None for doc in docs.values()), docs
    chunker = Chunker(size=200, overlap=0)
    urls = {c.url.removeprefix(site.base) for doc in docs.values() if doc for c in chunker.split(doc)}
    assert {
        "/docs/guide.md#install-steps",
        "/docs/ref.rst#options",
        "/docs/tour.ipynb#notebook-tour",
        "/docs/notes#notes",
    } <= urls, urls
    assert docs["/docs/guide.md"] is not None and docs["/docs/guide.md"].kind == "markdown"


def test_a_page_refused_for_its_type_is_a_failure_with_the_type(tmp_path: Path) -> None:
    routes = {
        "/docs/": Reply(body=html("Home", "data")),
        "/docs/data": sequence(Reply(body=b"{}", headers={"Content-Type": "application/json"})),
    }
    with SiteServer(routes) as site:  # type: ignore[arg-type]
        report = crawl(f"{site.base}/docs/", tmp_path, FAST)
    assert [(p.url.removeprefix(site.base), p.reason) for p in report.failures] == [
        ("/docs/data", "no parser for application/json")
    ]


def test_a_binary_document_is_stored_byte_for_byte_under_its_kind(tmp_path: Path) -> None:
    kind = kind_for_media_type("application/pdf")
    if kind is None:
        pytest.skip("the parse registry has no kind for application/pdf")
    body = b"%PDF-1.4\n\x00\xff\xfe binary \x00 bytes\n%%EOF\n"
    routes = {
        "/docs/": Reply(body=html("Home", "manual", "guide.pdf")),
        "/docs/manual": Reply(body=body, headers={"Content-Type": "application/pdf"}),  # no extension: the type
        "/docs/guide.pdf": Reply(body=body, headers={"Content-Type": "application/octet-stream"}),  # the extension
    }
    with SiteServer(routes) as site:  # type: ignore[arg-type]
        report = crawl(f"{site.base}/docs/", tmp_path, FAST)
    assert not report.failures and report.new == 3
    entries = {e.url.removeprefix(site.base): e for e in read_manifest(tmp_path)}
    for path in ("/docs/manual", "/docs/guide.pdf"):
        assert entries[path].kind == kind and (tmp_path / entries[path].file).read_bytes() == body


def test_a_page_redirecting_to_an_unusable_url_fails_alone(tmp_path: Path) -> None:
    """httpx reads a redirect's Location even when not following it: a hostile one must not end the crawl."""
    routes = {
        "/robots.txt": Reply(404, "", headers=TEXT),
        "/docs/": Reply(body=html("Home", "/docs/bad", "/docs/good")),
        "/docs/bad": Reply(301, headers={"Location": "javascript:alert(1)"}),
        "/docs/good": Reply(body=html("Good")),
    }
    with SiteServer(routes) as site:  # type: ignore[arg-type]
        report = crawl(f"{site.base}/docs/", tmp_path, FAST)
    assert report.pages == 2
    assert [f.url.removeprefix(site.base) for f in report.failures] == ["/docs/bad"]
