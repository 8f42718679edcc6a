"""The web page in a real headless Chromium against the real app (uvicorn engine, embedded models).

Needs Debian's chromium (/usr/bin/chromium, installed by .ci/run) and the playwright Python package; it drives
the installed browser, never a downloaded one. Each test saves a screenshot under its tmp_path (the path is
printed); the assertions are on the DOM, never on pixels.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ragline.components import Components
from ragline.config import load_settings
from ragline.ingest.local import ingest

from .held_llm import FIRST, held_llm
from .helpers import DOCS, KEY, SITE, app_settings, serve_in_process

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
FLUX = "How do I calibrate the flux widget?"
LAST = "#turns li.turn:last-child"
ANSWERED = f"{LAST} .timings:not(:empty)"


@pytest.fixture(scope="module")
def base_url(index_dir: Path) -> Iterator[str]:
    # No API keys here: the keyed flow is covered by its own test below.
    with serve_in_process(app_settings(index_dir, api_keys={})) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"chromium not found at {CHROMIUM}: .ci/run installs Debian's chromium package")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def screenshot(page: Any, folder: Path, name: str) -> None:
    shot = folder / f"{name}.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    print(f"screenshot: {shot}")


def ask(page: Any, question: str, turns: int) -> None:
    """Ask with the keyboard (Enter) and wait until the page shows ``turns`` finished or ended turns."""
    page.fill("#question", question)
    page.keyboard.press("Enter")
    page.wait_for_function(
        "n => document.querySelectorAll('#turns li.turn:not([data-state=streaming])').length === n",
        arg=turns,
        timeout=120_000,
    )


def test_ask_stream_and_follow_a_citation(base_url: str, browser: Any, tmp_path: Path) -> None:
    page = browser.new_page()
    page.goto(base_url + "/")
    assert page.title() == "ragline"
    ask(page, FLUX, 1)
    assert page.get_attribute(LAST, "data-state") == "done"
    assert page.inner_text(f"{LAST} .answer").strip()
    assert page.is_hidden(f"{LAST} .error")
    first = page.locator(f"{LAST} .citations details").first
    href = first.locator("a.source").get_attribute("href")
    assert href == SITE["acme"] + "/flux.html#calibrating-the-flux-widget"
    # No raw fusion score beside a source: it means nothing to a reader (the list's order is the rank).
    summaries = page.locator(f"{LAST} .citations summary").all_inner_texts()
    assert summaries and not [s for s in summaries if "score" in s or re.search(r"\d\.\d{3}", s)], summaries
    first.locator("summary").click()
    assert first.evaluate("d => d.open") is True
    assert "blue lever" in first.locator("pre").inner_text()
    timings = page.inner_text(f"{LAST} .timings")
    assert "ms" in timings and "extractive" in timings and "none (" not in timings  # no model named when none asked
    # The answer's [n] markers link to the n-th citation's page, with its title as the tooltip.
    cites = page.locator(f"{LAST} .answer a.cite").evaluate_all(
        "els => els.map(a => [a.dataset.n, a.getAttribute('href'), a.title, a.target])"
    )
    citations = page.locator(f"{LAST} .citations details").evaluate_all(
        "els => els.map(d => [d.querySelector('a.source').getAttribute('href'), "
        "d.querySelector('summary').firstChild.textContent])"
    )
    assert cites, page.inner_text(f"{LAST} .answer")
    for n, cite_href, title, target in cites:
        assert (cite_href, title) == tuple(citations[int(n) - 1])
        assert target == "_blank"
    screenshot(page, tmp_path, "answer")
    page.close()


# Every feature of the renderer at once, and what must never become markup or a link.
MARKDOWN = "\n".join(
    [
        "# Calibrating",
        "Turn the **blue** lever, then _wait_ for the `green` light [1].",
        "",
        "- first step",
        "- second, see [the manual](https://docs.example/manual#lever) or [this](javascript:alert%281%29)",
        "  - a nested step",
        "",
        "3. third",
        "4. fourth",
        "",
        "```python",
        "print('<b>bold?</b>')  # [1] stays code",
        "```",
        "",
        '<img src=x onerror="window.__pwned = 1"> <script>window.__pwned = 2</script>',
        "snake_case_name stays, 2 * 3 * 4 too; [9] is no citation, [1, 2] are; ***both*** and \\*escaped\\*",
        "",
        "> quoted [data](data:text/html,hi)",
        "",
        "A [relative guide](guide/intro.html) and https://docs.example/page.",
    ]
)

RENDER = """md => {
  const box = document.createElement("div");
  box.className = "md";
  box.id = "crafted";
  const cite = (n) => (n <= 2 ? { href: `https://docs.example/a#s${n}`, title: `Title ${n}`, external: true } : null);
  box.append(RaglineMarkdown.render(md, { cite }));
  document.querySelector("main").prepend(box);
  const all = (sel) => [...box.querySelectorAll(sel)];
  return {
    h: all("h3").map((e) => e.textContent),
    strong: all("strong").map((e) => e.textContent),
    em: all("em").map((e) => e.textContent),
    code: all(":not(pre) > code").map((e) => e.textContent),
    pre: all("pre > code").map((e) => [e.className, e.textContent]),
    ul: all("ul").map((u) => [...u.children].map((li) => li.firstChild.textContent)),
    ol: all("ol").map((o) => [o.start, o.children.length]),
    quote: all("blockquote").map((e) => e.textContent),
    links: all("a").map((a) => [a.textContent, a.getAttribute("href"), a.title]),
    elements: all("img, script, iframe, object").length,
    text: box.textContent,
    pwned: window.__pwned === undefined ? null : window.__pwned,
  };
}"""


def test_markdown_renders_safely_and_streams_cheaply(base_url: str, browser: Any, tmp_path: Path) -> None:
    page = browser.new_page()
    page.goto(base_url + "/")
    got = page.evaluate(RENDER, MARKDOWN)
    assert got["h"] == ["Calibrating"]
    assert got["strong"] == ["blue", "both"] and got["em"] == ["wait", "both"]
    assert got["code"] == ["green"]
    assert got["pre"] == [["language-python", "print('<b>bold?</b>')  # [1] stays code"]]
    assert got["ul"] == [["first step", "second, see the manual or this"], ["a nested step"]]
    assert got["ol"] == [[3, 2]]
    assert got["quote"] == ["quoted data"]
    assert got["links"] == [
        ["1", "https://docs.example/a#s1", "Title 1"],
        ["the manual", "https://docs.example/manual#lever", "https://docs.example/manual#lever"],
        ["1", "https://docs.example/a#s1", "Title 1"],
        ["2", "https://docs.example/a#s2", "Title 2"],
        ["relative guide", base_url + "/guide/intro.html", "guide/intro.html"],
        ["https://docs.example/page", "https://docs.example/page", ""],
    ]
    # Hostile input stays text: no element, no script run, no javascript: or data: link.
    assert got["elements"] == 0 and got["pwned"] is None
    assert '<img src=x onerror="window.__pwned = 1">' in got["text"] and "<script>" in got["text"]
    assert "[9] is no citation" in got["text"] and "snake_case_name" in got["text"]
    assert "*escaped*" in got["text"] and "this" in got["text"]

    # A stream: each step re-renders only the blocks that changed, and tokens within one frame cost one draw.
    streamed = page.evaluate(
        """async () => {
      const box = document.createElement("div");
      document.body.append(box);
      const view = new RaglineMarkdown.View(box, {});
      const text = "One paragraph.\\n\\n- a\\n- b\\n\\n```\\ncode <i>x</i>\\n```\\nafter";
      view.finish(text.slice(0, 16));
      const first = box.firstChild;
      let draws = 0;
      const draw = view.draw.bind(view);
      view.draw = () => { draws += 1; draw(); };
      for (let i = 17; i <= text.length; i++) view.update(text.slice(0, i));
      await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
      return {
        draws, kept: box.firstChild === first,
        tags: [...box.children].map((b) => b.firstChild.tagName),
        code: box.querySelector("pre code").textContent,
      };
    }"""
    )
    assert streamed == {"draws": 1, "kept": True, "tags": ["P", "UL", "PRE", "P"], "code": "code <i>x</i>"}
    screenshot(page, tmp_path, "markdown")
    page.close()


def test_citations_link_only_to_web_pages_and_the_page_is_locked_down(base_url: str, browser: Any) -> None:
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
    ask(page, FLUX, 1)
    assert not [p for p in problems if "Content Security Policy" in p], problems  # the page runs under its CSP
    page.close()


def test_the_page_keeps_the_conversation_and_starts_a_new_one(base_url: str, browser: Any, tmp_path: Path) -> None:
    page = browser.new_page()
    bodies: list[dict[str, Any]] = []
    page.on("request", lambda r: bodies.append(json.loads(r.post_data)) if r.url.endswith("/query") else None)
    page.goto(base_url + "/")
    assert page.is_hidden("#conversation") and page.is_hidden("#new")
    for n, question in enumerate((FLUX, "Which colour is the lever?"), start=1):
        ask(page, question, n)
    assert bodies[0]["history"] == []
    assert [t["role"] for t in bodies[1]["history"]] == ["user", "assistant"]
    assert bodies[1]["history"][0]["content"] == FLUX
    assert "lever" in bodies[1]["history"][1]["content"]  # the first answer, as the server wrote it
    # Both turns stay on the page, each with its question, its answer and its own sources.
    turns = page.locator("#turns li.turn")
    assert turns.count() == 2 and page.is_visible("#conversation")
    assert [t.strip() for t in turns.locator(".question-text").all_inner_texts()] == [
        FLUX,
        "Which colour is the lever?",
    ]
    assert all(text.strip() for text in turns.locator(".answer").all_inner_texts())
    assert turns.nth(0).locator(".citations li").count() >= 1 and turns.nth(1).locator(".citations li").count() >= 1
    assert page.inner_text("#question-label") == "Follow-up question"
    screenshot(page, tmp_path, "conversation")
    page.click("#new")
    assert page.is_hidden("#conversation") and page.locator("#turns li").count() == 0
    ask(page, FLUX, 1)
    assert bodies[-1]["history"] == []  # a new conversation sends no history
    page.close()


def test_stop_cancels_the_stream_and_the_server_sees_it(index_dir: Path, browser: Any, tmp_path: Path) -> None:
    # A model that sends its first sentence, then waits until released: the answer is surely under way.
    copy = tmp_path / "data"
    shutil.copytree(index_dir, copy)
    with held_llm() as llm:
        held = {"backend": "openai", "base_url": llm.base_url, "model": "held", "max_retries": 0}  # type: ignore[attr-defined]
        settings = app_settings(copy, llm=held, api_keys={})
        settings.answer = settings.answer.model_copy(update={"mode": "generative"})  # tokens stream as they come
        with serve_in_process(settings) as url:
            page = browser.new_page()
            bodies: list[dict[str, Any]] = []
            page.on("request", lambda r: bodies.append(json.loads(r.post_data)) if r.url.endswith("/query") else None)
            page.goto(url + "/")
            page.fill("#question", FLUX)
            page.keyboard.press("Enter")
            page.wait_for_function(
                "text => document.querySelector('#turns li.turn .answer').textContent.includes(text)",
                arg="three times clockwise",
                timeout=120_000,
            )
            assert page.get_attribute(LAST, "data-state") == "streaming"
            assert "ragline_streams_active 1.0" in httpx.get(f"{url}/metrics").text
            assert page.is_visible("#stop") and page.is_disabled("#submit")
            page.click("#stop")
            page.wait_for_selector(f"{LAST}[data-state=stopped]", timeout=10_000)
            # The partial answer stays, marked as stopped; nothing after the held sentence arrived.
            assert "three times clockwise" in page.inner_text(f"{LAST} .answer")
            assert "green light" not in page.inner_text(f"{LAST} .answer")
            assert page.is_visible(f"{LAST} .stopped") and page.is_hidden(f"{LAST} .error")
            assert page.is_hidden("#stop") and page.is_enabled("#submit")
            screenshot(page, tmp_path, "stopped")
            # The server saw the client leave: the stream's slot is free while the model is still held.
            deadline = time.monotonic() + 10
            while "ragline_streams_active 0.0" not in httpx.get(f"{url}/metrics").text:
                assert time.monotonic() < deadline, "the server still streams the stopped answer"
                time.sleep(0.05)
            assert not llm.release.is_set()
            # A stopped answer is not history: the next question goes alone.
            llm.release.set()
            ask(page, "Which colour is the lever?", 2)
            assert page.get_attribute(LAST, "data-state") == "done"
            assert FIRST.strip()[:20] in page.inner_text(f"{LAST} .answer")
            assert [b["history"] for b in bodies] == [[], []]
            page.close()


def test_an_auto_answer_shows_the_draft_labelled_until_the_model_answer_replaces_it(
    index_dir: Path, browser: Any, tmp_path: Path
) -> None:
    # A model that waits before its first word: the draft is what the reader has meanwhile.
    copy = tmp_path / "data"
    shutil.copytree(index_dir, copy)
    with held_llm(hold_first=True) as llm:
        held = {"backend": "openai", "base_url": llm.base_url, "model": "held", "max_retries": 0}  # type: ignore[attr-defined]
        settings = app_settings(copy, llm=held, api_keys={})
        with serve_in_process(settings) as url:
            page = browser.new_page()
            page.goto(url + "/")
            page.fill("#question", FLUX)
            page.keyboard.press("Enter")
            page.wait_for_selector(f"{LAST} .answer.draft", timeout=60_000)
            assert llm.started.wait(10) and not llm.release.is_set()  # the model has not written a word
            assert page.get_attribute(LAST, "data-state") == "streaming"
            assert page.is_visible(f"{LAST} .draft-note")
            assert "Draft from the documentation" in page.inner_text(f"{LAST} .draft-note")
            assert "blue lever" in page.inner_text(f"{LAST} .answer")
            screenshot(page, tmp_path, "draft")
            llm.release.set()
            page.wait_for_selector(ANSWERED, timeout=60_000)
            assert page.get_attribute(LAST, "data-state") == "done"
            assert page.is_hidden(f"{LAST} .draft-note")
            assert "draft" not in (page.get_attribute(f"{LAST} .answer", "class") or "")
            shown = page.inner_text(f"{LAST} .answer")
            made = page.inner_text(f"{LAST} .timings")
            assert "blue lever" in shown.lower() and ("generative" in made or "extractive" in made), (shown, made)
            page.close()


def test_the_source_filter_lists_the_index_and_narrows_the_citations(
    base_url: str, browser: Any, tmp_path: Path
) -> None:
    page = browser.new_page()
    page.goto(base_url + "/")
    page.click("#options summary")
    page.wait_for_function("() => document.querySelectorAll('#source option').length > 1")
    options = page.locator("#source option").evaluate_all("os => os.map(o => [o.value, o.textContent])")
    # Without keys every tenant's documents are listed, by title, grouped by folder (a folder option each).
    assert options == [
        ["", "All sources"],
        [SITE["acme"] + "/", f"Everything under {SITE['acme']}/"],
        [SITE["acme"] + "/billing.html", "Acme billing"],
        [SITE["acme"] + "/flux.html", "Flux widget manual"],
        [SITE["globex"] + "/", f"Everything under {SITE['globex']}/"],
        [SITE["globex"] + "/hammock.html", "Project Hammock"],
        [SITE["globex"] + "/reactor.html", "Globex reactor handbook"],
    ]
    assert page.inner_text("#sources-note") == "4 documents in the index."
    page.select_option("#source", label="Project Hammock")
    assert page.inner_text("#scope") == "Searching in Project Hammock"
    page.fill("#k", "2")
    page.fill("#question", "When does the project launch?")
    page.click("#submit")
    page.wait_for_selector(ANSWERED, timeout=120_000)
    hrefs = page.locator(f"{LAST} .citations a.source").evaluate_all("els => els.map(e => e.getAttribute('href'))")
    assert hrefs and all(h.startswith(SITE["globex"] + "/hammock.html") for h in hrefs)
    assert page.inner_text(f"{LAST} .scope") == "in Project Hammock"
    screenshot(page, tmp_path, "filter")
    page.close()


def test_errors_are_shown_plainly_and_a_key_sees_its_own_sources(index_dir: Path, browser: Any, tmp_path: Path) -> None:
    # With keys configured and none entered, the page says what is wrong instead of failing silently.
    # A second server needs its own copy: the embedded engine lets one process open an index folder.
    copy = tmp_path / "data"
    shutil.copytree(index_dir, copy)
    with serve_in_process(app_settings(copy)) as url:
        page = browser.new_page()
        page.goto(url + "/")
        page.wait_for_selector("#sources-note:not(:empty)", state="attached")  # under the closed Options
        assert "API key" in page.text_content("#sources-note")
        page.fill("#question", FLUX)
        page.click("#submit")
        page.wait_for_selector(f"{LAST} .error:not([hidden])", timeout=60_000)
        assert "API key" in page.inner_text(f"{LAST} .error")
        assert page.input_value("#question") == FLUX  # kept, to ask again
        # the key, entered once, is kept for the session and used, for the sources as for the answers
        page.click("#options summary")
        page.fill("#apikey", KEY["acme"])
        page.dispatch_event("#apikey", "change")
        page.wait_for_function("() => document.querySelectorAll('#source option').length > 1")
        values = page.locator("#source option").evaluate_all("os => os.map(o => o.value)")
        assert values == ["", SITE["acme"] + "/", SITE["acme"] + "/billing.html", SITE["acme"] + "/flux.html"]
        page.click("#submit")
        page.wait_for_selector(ANSWERED, timeout=120_000)
        assert page.is_hidden(f"{LAST} .error")
        assert page.locator("#turns li.turn").count() == 1  # the failed attempt gave way to the answer
        assert page.evaluate("sessionStorage.getItem('ragline.apiKey')") == KEY["acme"]
        screenshot(page, tmp_path, "keyed")
        page.close()


@pytest.fixture(scope="module")
def relative_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """acme's pages ingested as ``make run`` ingests docs/: --url-template 'docs/{path}' (relative sources)."""
    root = tmp_path_factory.mktemp("relative")
    folder = root / "docs"
    folder.mkdir()
    for name, text in DOCS["acme"].items():
        (folder / name).write_text(text, encoding="utf-8")
    comp = Components(load_settings(data_dir=root / "data"))
    comp.settings.parse.url_template = "docs/{path}"
    try:
        ingest([folder], comp)
    finally:
        comp.close()
    return root / "data"


CITED = "docs/flux.md#calibrating-the-flux-widget"
SOURCES_AND_CITES = """turn => ({
  sources: [...turn.querySelectorAll('.citations .source')]
    .map(e => [e.tagName, e.textContent, e.getAttribute('href')]),
  cites: [...turn.querySelectorAll('.answer a.cite')].map(a => [a.getAttribute('href'), a.target]),
})"""


def test_relative_sources_are_paths_not_links_to_the_server(relative_index: Path, browser: Any) -> None:
    # Resolved against the page, docs/flux.md would open the server's own /docs route (its API documentation).
    with serve_in_process(app_settings(relative_index, api_keys={})) as url:
        page = browser.new_page()
        page.goto(url + "/")
        ask(page, FLUX, 1)
        got = page.locator(LAST).evaluate(SOURCES_AND_CITES)
        assert ["SPAN", CITED, None] in got["sources"], got
        assert all(tag == "SPAN" for tag, _, _ in got["sources"]), got
        # An [n] opens its citation in this page instead.
        assert got["cites"] and all(href.startswith("#cite-") and not target for href, target in got["cites"])
        page.close()


def test_relative_sources_link_under_the_citation_base_url(relative_index: Path, browser: Any) -> None:
    settings = app_settings(relative_index, api_keys={})
    settings.answer = settings.answer.model_copy(update={"citation_base_url": "https://example.org/widgets/"})
    with serve_in_process(settings) as url:
        page = browser.new_page()
        page.goto(url + "/")
        ask(page, FLUX, 1)
        got = page.locator(LAST).evaluate(SOURCES_AND_CITES)
        linked = "https://example.org/widgets/" + CITED
        assert ["A", CITED, linked] in got["sources"], got
        assert [linked, "_blank"] in got["cites"], got
        # The API itself returns the source as it was ingested.
        r = httpx.post(url + "/search", json={"query": FLUX, "k": 1}, timeout=60)
        assert r.json()["hits"][0]["source"] == CITED
        page.close()
