"""HTML extraction: real Docusaurus-like and Sphinx pages, and small pages that pin each rule."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ragline.config import ParseSettings
from ragline.errors import SourceError
from ragline.parse import parse_bytes
from ragline.parse.html import clean_title, parse_html
from ragline.records import Document

SETTINGS = ParseSettings()
# Text that only the site shell (navbar, sidebar, footer, cookie banner, pagination, TOC) carries.
LCEL_CHROME = [
    "Edit this page",
    "We use cookies",
    "Privacy policy",
    "Discord",
    "Copyright ©",
    "Skip to main content",
    "JS/TS Docs",
    "Direct link to",
    "\u200b",
]


def _parse_file(path: Path, settings: ParseSettings = SETTINGS) -> Document:
    return parse_bytes(path.read_bytes(), source=path.as_uri(), kind="html", settings=settings, path=str(path))


def _ids(path: Path) -> set[str]:
    return set(re.findall(r'\bid="([^"]+)"', path.read_text(encoding="utf-8")))


@pytest.fixture(scope="module")
def lcel_site(corpora: Path) -> Path:
    return corpora / "langchain-lcel" / "site"


@pytest.fixture(scope="module")
def ray_html(corpora: Path) -> Path:
    return corpora / "ray-html-2023-06" / "docs.ray.io" / "en" / "master"


# ----------------------------------------------------------------------------- LCEL (Docusaurus-like)


def test_lcel_page_sections_anchors_and_canonical_source(lcel_site: Path) -> None:
    path = lcel_site / "docs/expression_language/how_to/binding/index.html"
    doc = _parse_file(path)
    assert doc.source == "https://python.langchain.com/docs/expression_language/how_to/binding"
    assert doc.title == "Bind runtime args"
    assert [(s.title, s.anchor, s.level) for s in doc.sections] == [
        ("Bind runtime args", "bind-runtime-args", 1),
        ("Attaching OpenAI functions", "attaching-openai-functions", 2),
        ("Attaching OpenAI tools", "attaching-openai-tools", 2),
    ]
    assert {s.anchor for s in doc.sections} <= _ids(path)
    # Code keeps its line breaks; outputs are kept as text.
    assert "from langchain.chat_models import ChatOpenAI\nfrom langchain.prompts import" in doc.text
    assert "x^3 = 12 - 7" in doc.text


def test_lcel_chrome_outside_and_inside_main_is_dropped(lcel_site: Path) -> None:
    path = lcel_site / "docs/expression_language/how_to/binding/index.html"
    raw = path.read_text(encoding="utf-8")
    doc = _parse_file(path)
    # Sidebar entries, breadcrumbs, prev/next labels and the right-hand TOC all exist in the file...
    chrome = ["Configure chain internals at runtime", "RunnableLambda: Run Custom Functions", "Querying a SQL DB"]
    for text in chrome + LCEL_CHROME[:6]:
        assert text in raw
    # ...but none of it is content.
    for text in chrome + LCEL_CHROME:
        assert text not in doc.text, text
    # The TOC repeats the h2 titles as links; they must appear once, as section titles only.
    assert "Attaching OpenAI tools" not in doc.text


def test_all_lcel_pages_parse_without_chrome(lcel_site: Path) -> None:
    pages = sorted(lcel_site.rglob("index.html"))
    assert len(pages) >= 27
    with_text = 0
    for path in pages:
        doc = _parse_file(path)
        for text in LCEL_CHROME:
            assert text not in doc.text, (path, text)
        if doc.sections:
            with_text += 1
        if "expression_language" not in path.parts:
            # The mirror's own home pages: no canonical link, no heading ids (anchors are slugs).
            assert doc.source == path.as_uri()
            continue
        assert doc.source.startswith("https://python.langchain.com/docs/expression_language"), path
        assert {s.anchor for s in doc.sections if s.anchor} <= _ids(path), path
    # Only the how-to index is nothing but a card list linking to its children.
    assert with_text == len(pages) - 1


def test_lcel_doc_cards_do_not_replace_the_article(lcel_site: Path) -> None:
    # The index page nests one <article> per card inside the page's <article>.
    doc = _parse_file(lcel_site / "docs/expression_language/cookbook/index.html")
    assert doc.title == "Cookbook"
    assert "Example code for accomplishing common tasks" in doc.text


# ----------------------------------------------------------------------------- Ray (Sphinx)


def test_ray_sphinx_page_anchors_titles_and_code(ray_html: Path) -> None:
    path = ray_html / "ray-core/actors/named-actors.html"
    doc = _parse_file(path)
    assert doc.source == "https://docs.ray.io/en/latest/ray-core/actors/named-actors.html"
    assert doc.title == "Named Actors"
    assert [s.anchor for s in doc.sections] == ["named-actors", "get-or-create-a-named-actor", "actor-lifetimes"]
    assert doc.sections[2].title == "Actor Lifetimes"  # no "#" permalink marker
    assert "@ray.remote\nclass Counter:\n    pass" in doc.text
    assert "Permalink" not in doc.text


def test_ray_section_id_wins_over_label_span(ray_html: Path) -> None:
    # <section id="models-preprocessors-..."><span id="rllib-models-walkthrough"></span><h1>...
    doc = _parse_file(ray_html / "rllib/rllib-models.html")
    assert doc.sections[0].anchor == "models-preprocessors-and-action-distributions"
    assert "built-in-auto-lstm-and-auto-attention-wrappers" in [s.anchor for s in doc.sections]


def test_all_ray_pages_parse_with_real_anchors(ray_html: Path) -> None:
    pages = sorted(ray_html.rglob("*.html"))
    assert len(pages) == 169
    for path in pages:
        doc = _parse_file(path)
        assert doc.sections, path
        assert doc.title and doc.title != path.name, path
        ids = _ids(path)
        for section in doc.sections:
            assert section.anchor is None or section.anchor in ids, (path, section.anchor)
            assert "¶" not in section.text and "¶" not in section.title, path
            assert not section.title.endswith("#"), (path, section.title)
        assert "Permalink to this" not in doc.text, path
        assert doc.source.startswith("https://docs.ray.io/"), path


# ----------------------------------------------------------------------------- rules, on small pages


def _html(body: str, head: str = "<title>Page — Site 2.0</title>") -> Document:
    return parse_html(
        f"<html><head>{head}</head><body>{body}</body></html>", source="http://x/p", fallback_title="p.html"
    )


def test_content_root_prefers_selector_then_main_article() -> None:
    body = "<nav>menu</nav><main><nav>crumbs</nav><article><h1>T</h1><p>inside</p></article><p>toc</p></main>"
    assert _html(body).text == "inside"
    custom = parse_html(
        "<body><div id='doc'><h2>Only</h2><p>this</p></div><p>not this</p></body>", source="s", selector="#doc"
    )
    assert custom.text == "this" and custom.sections[0].anchor == "only"
    assert _html("<h1>T</h1><p>body text</p><footer>foot</footer>").text == "body text"


def test_anchor_sources_in_order() -> None:
    doc = _html(
        "<main>"
        "<h1 id='own'>Own id<a class='headerlink' href='#own'>¶</a></h1><p>a</p>"
        "<section id='sec'><span id='label'></span><h2>Sphinx section</h2><p>b</p></section>"
        "<div class='section' id='old'><h2>Old Sphinx</h2><p>c</p></div>"
        "<a id='marker'></a><h2>Marked</h2><p>d</p>"
        "<h2>Plain Title, again!</h2><p>e</p><h2>Plain Title, again!</h2><p>f</p>"
        "</main>"
    )
    assert [s.anchor for s in doc.sections] == [
        "own",
        "sec",
        "old",
        "marker",
        "plain-title-again",
        "plain-title-again-1",
    ]
    assert doc.sections[0].title == "Own id"


def test_headings_in_notebook_outputs_are_text() -> None:
    doc = _html("<main><h1 id='a'>A</h1><p>x</p><div class='cell_output'><h3>Trial Status</h3><p>y</p></div></main>")
    assert [s.anchor for s in doc.sections] == ["a"]
    assert doc.sections[0].text == "x\nTrial Status\ny"


def test_junk_hidden_and_chrome_are_dropped() -> None:
    doc = _html(
        "<main><h1>T</h1><p>keep</p><script>var x</script><style>p{}</style><p hidden>hidden</p>"
        "<p style='display: none'>none</p><div class='cookie-banner'>cookies</div><button>Copy</button>"
        "<div role='navigation'>nav</div><svg><text>icon</text></svg><div class='prev-next-area'>Next</div>"
        "<a class='theme-edit-this-page' href='#'>Edit this page</a><noscript>js</noscript></main>"
    )
    assert doc.text == "keep"


def test_blocks_tables_and_pre_layout() -> None:
    doc = _html(
        "<main><h1>T</h1><p>one   two\n three</p><ul><li>first</li><li>second <b>bold</b></li></ul>"
        "<table><tr><th>k</th><th>v</th></tr><tr><td>a</td><td>1</td></tr></table>"
        "<pre>def f():\n    return 1\n</pre>line<br>break</main>"
    )
    assert doc.text == "one two three\nfirst\nsecond bold\nk | v\na | 1\ndef f():\n    return 1\nline\nbreak"


def test_text_before_first_heading_and_titles() -> None:
    doc = _html("<main><p>intro</p><h2>Part</h2><p>x</p></main>")
    assert doc.title == "Page"  # <title> without its site suffix, no h1
    assert [(s.title, s.anchor) for s in doc.sections] == [("Page", None), ("Part", "part")]
    assert parse_html("<p>x</p>", source="s", fallback_title="f.html").title == "f.html"


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("Named Actors — Ray 3.0.0.dev0", "Named Actors"),
        ("Bind runtime args | 🦜️🔗 Langchain", "Bind runtime args"),
        ("Ray - Scale AI", "Ray - Scale AI"),
        ("  Just   a title ", "Just a title"),
    ],
)
def test_clean_title(raw: str, clean: str) -> None:
    assert clean_title(raw) == clean


def test_canonical_only_when_absolute_http() -> None:
    head = "<link rel='canonical' href='https://example.org/page'>"
    assert _html("<main><h1>T</h1><p>x</p></main>", head).source == "https://example.org/page"
    relative = "<link rel='canonical' href='/page'>"
    assert _html("<main><h1>T</h1><p>x</p></main>", relative).source == "http://x/p"


def test_no_text_gives_no_sections() -> None:
    assert _html("<main><nav>only nav</nav><h2></h2></main>").sections == []


def test_declared_charset_is_honoured() -> None:
    data = '<html><head><meta charset="iso-8859-1"></head><body><h1>Café</h1><p>olé</p></body></html>'.encode("latin-1")
    doc = parse_bytes(data, source="s", kind="html", settings=SETTINGS)
    assert doc.title == "Café" and doc.text == "olé"
    with pytest.raises(SourceError, match="UTF-8"):
        parse_bytes(data.replace(b'charset="iso-8859-1"', b""), source="s", kind="html", settings=SETTINGS)


def test_malformed_and_deeply_nested_html_does_not_crash() -> None:
    unclosed = parse_html("<main><h1>Title</h1><p>open <b>bold <i>it<div><p>more</main></td>", source="s")
    assert unclosed.sections[0].title == "Title" and "open bold it" in unclosed.text and "more" in unclosed.text
    deep = "<main>" + "<div>" * 5000 + "<p>deep text</p>" + "</div>" * 10 + "</main>"
    assert "deep text" in parse_html(deep, source="s").text
    parse_html("<p>" * 50_000 + "<<<>>>&&&;" + "</x>" * 100, source="s")
