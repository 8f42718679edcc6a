"""chunk.py: chunks stay inside their section, point at their text, respect the size, and overlap."""

from __future__ import annotations

import itertools

from ragline.chunk import Chunker, token_chunker
from ragline.records import Document, Section

PARAGRAPH = "Ray Serve scales models. " * 12


def _doc() -> Document:
    sections = [Section("One", PARAGRAPH.strip(), anchor="one"), Section("Two", "Short section.", anchor="two")]
    return Document.from_sections("file:///docs/page.md", "Page", "markdown", sections)


def test_chunks_never_span_sections_and_point_at_their_text() -> None:
    doc = _doc()
    chunks = Chunker(size=80, overlap=20).split(doc, origin="/docs")
    assert {c.anchor for c in chunks} == {"one", "two"}
    assert [c.index for c in chunks] == list(range(len(chunks)))
    for c in chunks:
        assert doc.text[c.start : c.end] == c.text
        assert len(c.text) <= 80
        assert c.origin == "/docs" and c.doc_id == doc.doc_id
    assert chunks[-1].text == "Short section."


def test_consecutive_chunks_of_a_section_overlap() -> None:
    chunks = [c for c in Chunker(size=80, overlap=30).split(_doc()) if c.anchor == "one"]
    assert len(chunks) > 2
    assert all(b.start < a.end for a, b in itertools.pairwise(chunks))


def test_an_overlap_as_large_as_the_size_is_cut_down() -> None:
    assert Chunker(size=40, overlap=40).overlap == 10


def test_a_token_chunker_stays_below_what_the_model_reads() -> None:
    words = token_chunker(size=512, overlap=32, count_tokens=lambda t: len(t.split()), max_tokens=128)
    assert words.size == 96
    for c in words.split(_doc()):
        assert len(c.text.split()) <= 96


def test_each_piece_is_measured_once_and_the_chunks_are_the_splitters_own() -> None:
    from collections import Counter

    from langchain_text_splitters import RecursiveCharacterTextSplitter

    from ragline.chunk import SEPARATORS

    measured: Counter[str] = Counter()

    def count(text: str) -> int:
        measured[text] += 1
        return len(text.split())

    doc = Document.from_sections(
        "file:///docs/long.md", "Long", "markdown", [Section("One", ("Serve scales. Data streams.\n" * 40).strip())]
    )
    chunks = Chunker(size=30, overlap=8, length=count).split(doc)
    plain = RecursiveCharacterTextSplitter(
        chunk_size=30,
        chunk_overlap=8,
        length_function=lambda t: len(t.split()),
        separators=SEPARATORS,
        keep_separator="end",
        strip_whitespace=True,
    )
    assert [c.text for c in chunks] == plain.split_text(doc.sections[0].text)
    assert len(chunks) > 3
    assert max(measured.values()) == 1  # the splitter asks again and again; the tokenizer runs once
