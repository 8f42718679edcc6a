"""The web page in a real headless Chromium against the real app (uvicorn engine, embedded models).

Needs Debian's chromium (/usr/bin/chromium, installed by .ci/run) and the playwright Python package; it drives
the installed browser, never a downloaded one.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .helpers import KEY, SITE, app_settings, serve_in_process

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def base_url(index_dir: Path) -> Iterator[str]:
    # No API keys here: the keyed flow is covered by its own test below.
    with serve_in_process(app_settings(index_dir, api_keys={})) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"chromium not found at {CHROMIUM}: .ci/run installs Debian's chromium package")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def test_ask_stream_and_open_a_citation(base_url: str, browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    page = browser.new_page()
    page.goto(base_url + "/")
    assert page.title() == "ragline"
    page.fill("#question", "How do I calibrate the flux widget?")
    page.keyboard.press("Enter")  # keyboard-first: Enter asks
    page.wait_for_selector("#timings:not(:empty)", timeout=120_000)
    assert page.inner_text("#answer").strip()
    assert page.is_hidden("#error")
    first = page.locator("#citations details").first
    link = first.locator("a.source")
    href = link.get_attribute("href")
    assert href == SITE["acme"] + "/flux.html#calibrating-the-flux-widget"
    first.locator("summary").click()
    assert first.evaluate("d => d.open") is True
    assert "blue lever" in first.locator("pre").inner_text()
    assert "ms" in page.inner_text("#timings")
    shot = tmp_path / "page.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    print(f"screenshot: {shot}")
    page.close()


def test_citations_link_only_to_web_pages_and_the_page_is_locked_down(base_url: str, browser) -> None:  # type: ignore[no-untyped-def]
    r = httpx.get(base_url + "/")
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert r.headers["x-content-type-options"] == "nosniff"
    page = browser.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.goto(base_url + "/")
    cases = {
        "javascript:alert(document.domain)": None,
        " JavaScript:alert(1)": None,
        "data:text/html,<script>alert(1)</script>": None,
        "vbscript:msgbox(1)": None,
        "/srv/docs/guide.md": None,  # a local path is shown, not linked
        "file:///etc/passwd": None,
        "https://docs.example/a#b": "https://docs.example/a#b",
        "http://docs.example/": "http://docs.example/",
    }
    for source, expected in cases.items():
        assert page.evaluate("s => safeHref(s)", source) == expected, source
    tag = page.evaluate("s => sourceElement(s).tagName", "javascript:alert(1)")
    assert tag == "SPAN"
    page.fill("#question", "How do I calibrate the flux widget?")
    page.keyboard.press("Enter")
    page.wait_for_selector("#timings:not(:empty)", timeout=120_000)
    assert not [p for p in problems if "Content Security Policy" in p], problems  # the page runs under its CSP
    page.close()


def test_the_page_keeps_the_conversation_and_starts_a_new_one(base_url: str, browser) -> None:  # type: ignore[no-untyped-def]
    page = browser.new_page()
    bodies: list[dict] = []  # type: ignore[type-arg]
    page.on("request", lambda r: bodies.append(json.loads(r.post_data)) if r.url.endswith("/query") else None)
    page.goto(base_url + "/")
    assert page.is_hidden("#conversation")
    for n, question in enumerate(("How do I calibrate the flux widget?", "Which colour is the lever?"), start=1):
        page.fill("#question", question)
        page.keyboard.press("Enter")
        # The n-th answer has finished when the conversation lists n turns (counted from the loop, not from
        # the requests seen so far, which may lag the key press).
        page.wait_for_function("n => document.querySelectorAll('#turns li').length === n", arg=n)
    assert bodies[0]["history"] == []
    assert [t["role"] for t in bodies[1]["history"]] == ["user", "assistant"]
    assert bodies[1]["history"][0]["content"] == "How do I calibrate the flux widget?"
    assert page.locator("#turns li").count() == 2 and page.is_visible("#conversation")
    page.click("#new")
    assert page.is_hidden("#conversation") and page.locator("#turns li").count() == 0
    page.fill("#question", "How do I calibrate the flux widget?")
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.querySelectorAll('#turns li').length === 1")
    assert bodies[-1]["history"] == []  # a new conversation sends no history
    page.close()


def test_source_filter_narrows_the_citations(base_url: str, browser) -> None:  # type: ignore[no-untyped-def]
    page = browser.new_page()
    page.goto(base_url + "/")
    page.click("#options summary")
    page.fill("#source", SITE["globex"] + "/hammock.html")
    page.fill("#k", "2")
    page.fill("#question", "When does the project launch?")
    page.click("#submit")
    page.wait_for_selector("#timings:not(:empty)", timeout=120_000)
    hrefs = page.locator("#citations a.source").evaluate_all("els => els.map(e => e.getAttribute('href'))")
    assert hrefs and all(h.startswith(SITE["globex"] + "/hammock.html") for h in hrefs)
    page.close()


def test_errors_are_shown_plainly(index_dir: Path, browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # With keys configured and none entered, the page says what is wrong instead of failing silently.
    # A second server needs its own copy: the embedded engine lets one process open an index folder.
    copy = tmp_path / "data"
    shutil.copytree(index_dir, copy)
    with serve_in_process(app_settings(copy)) as url:
        page = browser.new_page()
        page.goto(url + "/")
        page.fill("#question", "How do I calibrate the flux widget?")
        page.click("#submit")
        page.wait_for_selector("#error:not([hidden])", timeout=60_000)
        assert "API key" in page.inner_text("#error")
        # the key, entered once, is kept for the session and used
        page.click("#options summary")
        page.fill("#apikey", KEY["acme"])
        page.dispatch_event("#apikey", "change")
        page.click("#submit")
        page.wait_for_selector("#timings:not(:empty)", timeout=120_000)
        assert page.is_hidden("#error")
        assert page.evaluate("sessionStorage.getItem('ragline.apiKey')") == KEY["acme"]
        page.close()
