"""Hostile input: every parser and the chunker on arbitrary bytes and adversarial HTML.

The contract: a document parses or fails with a SourceError, never anything else; it never hangs and never
needs unbounded memory. Property tests run in this process under a hard per-test alarm; the heavy
adversarial pages run in a child process under an address-space limit and a wall-clock limit, so a hang
or a blow-up fails the test instead of the test run. The limits are generous hang detectors (minutes,
gigabytes), not timings.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ragline.chunk import Chunker
from ragline.config import ParseSettings
from ragline.errors import SourceError
from ragline.parse import PARSERS, parse_bytes
from ragline.parse.html import MAX_DEPTH, cap_depth
from ragline.records import Document, Section

PARSE = ParseSettings()
KINDS = sorted(PARSERS)
TEST_SECONDS = 300  # hard bound for one property test, all its examples included
CHILD_SECONDS = 120  # hard bound for one adversarial document in a child process
CHILD_MEMORY = 2 * 1024**3  # address space of that child

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)


@pytest.fixture(autouse=True)
def alarm() -> Iterator[None]:
    """Fail a test that runs past TEST_SECONDS (a hang), even inside one example."""

    def expired(signum: int, frame: object) -> None:
        raise TimeoutError(f"test ran past {TEST_SECONDS} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(TEST_SECONDS)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def check_document(doc: Document) -> None:
    """What every parsed document promises: sections with text, offsets into the document text."""
    assert isinstance(doc, Document)
    for s in doc.sections:
        assert s.text.strip()
        assert doc.text[s.start : s.end] == s.text


def parse_or_reject(data: bytes, kind: str, redact: bool = False) -> Document | None:
    try:
        doc = parse_bytes(data, source="https://fuzz.example/page", kind=kind, settings=ParseSettings(redact=redact))
    except SourceError as e:
        assert str(e)  # a rejection always says why
        return None
    check_document(doc)
    return doc


# -- arbitrary bytes and text into every parser ---------------------------------------------------------------

# Pieces of markup of every kind we parse ("~" stands for a space inside a piece).
_PIECES = """< > </ <div> </div> <h1> </h1> <pre> &amp; &#0; &#x110000; &#xD800; & ; ``` ` * _ [ ]( ) |
    --- === :: |x| { } " ] <!-- --> <script> <![CDATA[ <?xml <meta~charset=utf-16> :ref:` `_
    {"cells":~[ "cell_type":~"markdown" "source":~ .. .. code-block:: #~ ##~ >~ -~ 1.~"""
_MARKUP = st.sampled_from(
    [*(p.replace("~", " ") for p in _PIECES.split()), "\x00", "\ufffd", "\r", "\n\n", "\t", "\u202e", "\U0001f600"]
)
markupish_text = st.lists(st.one_of(_MARKUP, st.text(max_size=20)), max_size=60).map("".join)


@FUZZ
@given(data=st.binary(max_size=4096), kind=st.sampled_from(KINDS))
def test_arbitrary_bytes_parse_or_are_rejected(data: bytes, kind: str) -> None:
    parse_or_reject(data, kind)


@FUZZ
@given(text=markupish_text, kind=st.sampled_from(KINDS), encoding=st.sampled_from(["utf-8", "utf-16", "latin-1"]))
def test_markup_like_text_parses_or_is_rejected(text: str, kind: str, encoding: str) -> None:
    parse_or_reject(text.encode(encoding, "replace"), kind)


@FUZZ
@given(text=markupish_text, kind=st.sampled_from(KINDS))
def test_redaction_keeps_documents_consistent(text: str, kind: str) -> None:
    doc = parse_or_reject(text.encode("utf-8", "surrogatepass"), kind, redact=True)
    if doc is not None:
        assert all(n > 0 for n in doc.redacted.values())


# -- adversarial HTML, built from parts ------------------------------------------------------------------------

_TAGS = st.sampled_from(["div", "p", "span", "li", "ul", "table", "td", "h2", "section", "a", "b", "pre", "x-y"])
_ATTR = st.tuples(st.sampled_from(["id", "class", "href", "title", "style"]), st.text(max_size=40)).map(
    lambda kv: f' {kv[0]}="{kv[1].replace(chr(34), "&quot;")}"'
)


def _element(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.tuples(_TAGS, st.lists(_ATTR, max_size=3), st.lists(children, max_size=4), st.booleans()).map(
        lambda t: f"<{t[0]}{''.join(t[1])}>{''.join(t[2])}" + (f"</{t[0]}>" if t[3] else "")  # unclosed at times
    )


html_fragments = st.recursive(st.one_of(markupish_text, st.sampled_from(["&amp;" * 50, "&#65;" * 50])), _element)


@FUZZ
@given(body=html_fragments, depth=st.integers(0, 3 * MAX_DEPTH))
def test_generated_html_parses(body: str, depth: int) -> None:
    page = f"<html><head><title>t</title></head><body><main>{'<div>' * depth}{body}</main></body></html>"
    parse_or_reject(page.encode("utf-8", "surrogatepass"), "html")


@FUZZ
@given(depth=st.integers(0, 2000), tag=st.sampled_from(["div", "li", "ul", "section", "blockquote", "p"]))
def test_depth_cap_keeps_the_text(depth: int, tag: str) -> None:
    page = f"<{tag}>" * depth + "deep words" + f"</{tag}>" * depth + "<p>after</p>"
    capped = cap_depth(page)
    assert "deep words" in capped and "<p>after</p>" in capped
    if tag not in ("li", "p"):  # a second <li> or <p> closes the first: those never nest
        assert page.count("<") - capped.count("<") == 2 * max(0, depth - MAX_DEPTH)
    if depth <= MAX_DEPTH:
        assert capped is page
    doc = parse_or_reject(page.encode(), "html")
    assert doc is not None and "deep words" in doc.text and "after" in doc.text


def test_ordinary_pages_are_not_touched_by_the_depth_cap() -> None:
    page = "<html><body>" + "<ul>" + "<li><p>item</p></li>" * 2000 + "</ul>" + "<div><span>x</span></div>" * 500
    assert cap_depth(page) is page


# -- the chunker -------------------------------------------------------------------------------------------------

section_texts = st.lists(
    st.one_of(markupish_text, st.text(alphabet=st.sampled_from("ab \n.?!;,"), max_size=400)), min_size=1, max_size=5
)


@FUZZ
@given(texts=section_texts, size=st.integers(16, 120), overlap=st.integers(0, 60))
def test_chunks_point_at_their_text(texts: list[str], size: int, overlap: int) -> None:
    sections = [Section(title=f"s{i}", text=t) for i, t in enumerate(texts)]
    doc = Document.from_sections(source="https://fuzz.example/c", title="c", kind="text", sections=sections)
    chunks = Chunker(size=size, overlap=overlap).split(doc)
    assert [c.index for c in chunks] == list(range(len(chunks)))
    for c in chunks:
        assert c.text.strip() and len(c.text) <= size
        assert doc.text[c.start : c.end] == c.text
        owner = next(s for s in doc.sections if s.title == c.section)
        assert owner.start <= c.start <= c.end <= owner.end  # never across sections


# -- big adversarial documents, in a child process with limits ------------------------------------------------

_CHILD = textwrap.dedent(
    """
    import json, resource, sys
    limit = int(sys.argv[1])
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    from ragline.config import ParseSettings
    from ragline.errors import SourceError
    from ragline.parse import parse_bytes
    case = json.loads(sys.stdin.readline())
    data = eval(case["make"], {"__builtins__": {}, "range": range}, {})  # the document is built here, not piped in
    try:
        doc = parse_bytes(data, source="https://fuzz.example/big", kind=case["kind"], settings=ParseSettings())
        out = {"ok": True, "sections": len(doc.sections), "text": doc.text[:200], "chars": len(doc.text)}
    except SourceError as e:
        out = {"ok": False, "reason": str(e)}
    out["peak_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps(out))
    """
)

# (id, kind, expression building the bytes, text that must survive or None when a rejection is fine)
BIG_CASES = [
    ("div-200k", "html", "b'<main>' + b'<div>' * 200000 + b'deep text' + b'</div>' * 200000 + b'</main>'", "deep text"),
    ("div-100k-unclosed", "html", "b'<div>' * 100000 + b'deep text'", "deep text"),
    ("li-ul-100k", "html", "b'<ul><li>' * 100000 + b'deep text'", "deep text"),
    ("blockquote-100k", "html", "b'<blockquote>' * 100000 + b'deep text'", "deep text"),
    ("attr-10mb", "html", "b'<div title=\"' + b'a' * 10000000 + b'\">attr text</div>'", "attr text"),
    ("attr-unclosed-10mb", "html", "b'<p>before</p><div title=\"' + b'a' * 10000000", "before"),
    ("entities", "html", "b'<p>' + b'&amp;' * 1000000 + b'&#65;&#x10FFFF;&#0;&#xD800;' * 100000 + b'</p>'", "&&&"),
    ("entity-names", "html", "b'<p>' + b'&nbsp;&lt;&gt;&quot;&copy;&unknown;' * 300000 + b'</p>'", "<>"),
    ("unclosed-tags", "html", "b'<a ' * 500000", None),
    ("comments", "html", "b'<!--' * 500000 + b'<p>x</p>'", None),
    ("nul-bytes", "html", "b'<p>nul</p>' + b'\\x00' * 1000000", None),
    ("mixed-encodings", "html", "('<p>caf\\u00e9 ' * 1000).encode('utf-8') + b'\\xe9\\xff\\xfe' * 100000", None),
    ("declared-latin1", "html", "b'<meta charset=latin-1><p>caf\\xe9</p>' * 100000", "café"),
    ("utf16-bom", "html", "'\\ufeff<p>wide text</p>'.encode('utf-16') * 1", "wide text"),
    ("markdown-nesting", "markdown", "b'> ' * 100000 + b'x\\n' + b'- ' * 100000 + b'y\\n' + b'[' * 100000", None),
    ("rst-nesting", "rst", "b''.join(b'   ' * i + b'- x\\n\\n' for i in range(400))", None),
    ("notebook-deep-json", "notebook", "b'[' * 100000 + b']' * 100000", None),
    ("text-10mb-one-line", "text", "b'word ' * 2000000", "word word"),
]


@pytest.mark.slow
@pytest.mark.parametrize(("kind", "make", "survives"), [c[1:] for c in BIG_CASES], ids=[c[0] for c in BIG_CASES])
def test_big_adversarial_documents_are_bounded(kind: str, make: str, survives: str | None) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, str(CHILD_MEMORY)],
        input=json.dumps({"kind": kind, "make": make}) + "\n",
        capture_output=True,
        text=True,
        timeout=CHILD_SECONDS,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    if survives is not None:
        assert out["ok"], out
        assert survives in out["text"], out["text"]
    elif not out["ok"]:
        assert out["reason"]
