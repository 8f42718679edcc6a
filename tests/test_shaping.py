"""Result shaping on hand-made hits: duplicates collapse, pages are capped, neighbours merge."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ragline.records import Chunk, Document, Hit, Section
from ragline.shaping import collapse_duplicates, diversify, merge_adjacent, shape

TEXT = "Alpha beta gamma delta. " * 3 + "Epsilon zeta eta theta. " * 3


def chunk(source: str, start: int, end: int, section: str = "S", text: str | None = None) -> Chunk:
    doc = Document.from_sections(source, "T", "text", [Section(section, TEXT)])
    return Chunk(
        doc_id=doc.doc_id,
        source=source,
        title="T",
        section=section,
        anchor=None,
        text=TEXT[start:end] if text is None else text,
        start=start,
        end=end,
        index=start,
        doc_hash="h",
    )


def hits(*chunks: Chunk) -> list[Hit]:
    return [Hit(c, 1.0 - i / 10) for i, c in enumerate(chunks)]


def test_merge_joins_overlapping_pieces_once() -> None:
    a, b = chunk("p", 0, 48), chunk("p", 40, 100)
    [merged] = merge_adjacent(hits(b, a))
    assert merged.chunk.text == TEXT[0:100]  # the overlap appears once
    assert (merged.chunk.start, merged.chunk.end) == (0, 100)
    assert merged.score == 1.0  # the best piece's score
    assert merged.chunk.metadata["chunk_ids"] == [a.id, b.id]


def test_merge_keeps_the_best_pieces_place() -> None:
    other = chunk("q", 0, 20)
    a, b = chunk("p", 0, 48), chunk("p", 48, 100)
    merged = merge_adjacent(hits(other, a, b))
    assert [h.chunk.source for h in merged] == ["q", "p"]


def test_merge_leaves_distant_pieces_and_other_sections_alone() -> None:
    far = merge_adjacent(hits(chunk("p", 0, 20), chunk("p", 60, 100)))
    assert len(far) == 2
    sections = merge_adjacent(hits(chunk("p", 0, 48, "A"), chunk("p", 40, 100, "B")))
    assert len(sections) == 2


def test_merge_chains_through_a_middle_piece() -> None:
    merged = merge_adjacent(hits(chunk("p", 0, 40), chunk("p", 80, 144), chunk("p", 35, 85)))
    assert len(merged) == 1 and merged[0].chunk.text == TEXT[0:144]


def test_collapse_drops_a_copy_from_another_page() -> None:
    same = "Ray Serve scales deployments by adding replicas when the queue grows long enough."
    kept = collapse_duplicates(
        hits(chunk("p", 0, 10, text=same), chunk("q", 0, 10, text=same + " Also"), chunk("r", 0, 5))
    )
    assert [h.chunk.source for h in kept] == ["p", "r"]


def test_collapse_keeps_different_texts_and_overlapping_neighbours() -> None:
    a, b = chunk("p", 0, 60), chunk("p", 10, 70)  # neighbours: merging, not collapsing, handles them
    assert len(collapse_duplicates(hits(a, b))) == 2
    x = chunk("p", 0, 10, text="one two three four five")
    y = chunk("q", 0, 10, text="six seven eight nine ten")
    assert len(collapse_duplicates(hits(x, y))) == 2


def test_diversify_pushes_extra_chunks_of_a_page_back() -> None:
    hs = hits(chunk("p", 0, 5), chunk("p", 10, 15), chunk("p", 20, 25), chunk("q", 0, 5))
    assert [h.chunk.source for h in diversify(hs, 2)] == ["p", "p", "q", "p"]
    assert diversify(hs, None) == hs


WORDS = ["ray", "serve", "deploy", "scale", "actor", "task", "data", "train", "tune", "cluster"]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 5), st.lists(st.integers(0, len(WORDS) - 1), min_size=0, max_size=12)),
        max_size=40,
    ),
    st.integers(1, 15),
    st.booleans(),
    st.sampled_from([None, 1, 2]),
)
def test_lazy_shape_equals_dedupe_then_diversify(
    raw: list[tuple[int, list[int]]], depth: int, dedupe: bool, cap: int | None
) -> None:
    """``shape`` stops early; what it returns is exactly the first ``depth`` of the full composition."""
    given_hits = []
    for i, (page, words) in enumerate(raw):
        text = " ".join(WORDS[w] for w in words)
        given_hits.append(Hit(chunk(f"https://x.example/p{page}", i, i + 1, section=f"S{i}", text=text), 1.0 / (i + 1)))
    full = collapse_duplicates(given_hits) if dedupe else list(given_hits)
    expected = diversify(full, cap)[:depth]
    assert [h.chunk.id for h in shape(given_hits, depth, dedupe=dedupe, max_per_page=cap)] == [
        h.chunk.id for h in expected
    ]
