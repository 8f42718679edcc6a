"""Result shaping: what the prompt gets once the ranking is known (pure functions on hits).

* :func:`collapse_duplicates` drops chunks that say nearly the same as a better-ranked one (the same
  paragraph copied across pages, or overlapping pieces of one section);
* :func:`diversify` caps how many chunks one page may hold among the first ones, pushing the rest back;
* :func:`merge_adjacent` joins chunks of one section that touch or overlap into one block, in the
  position of the best of them, so the model reads a passage once instead of in pieces.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace

from ragline.records import Chunk, Hit

_WORD = re.compile(r"\w+")
SHINGLE = 4  # words per shingle for near-duplicate detection


def shingles(text: str, n: int = SHINGLE) -> frozenset[int]:
    """The hashes of the ``n``-word sequences of a text (lowercase); short texts give their one sequence.

    Hashes rather than the word tuples: sets of ints intersect about three times faster (no string
    comparisons on a match), and a 64-bit collision between two chunks' shingles is negligible."""
    words = _WORD.findall(text.lower())
    if len(words) < n:
        return frozenset([hash(tuple(words))]) if words else frozenset()
    # zip builds the tuples in C, a quarter faster than slicing; it stops at the shortest tail.
    return frozenset(map(hash, zip(*(words[i:] for i in range(n)), strict=False)))


def _similar(a: frozenset[int], b: frozenset[int], threshold: float) -> bool:
    if not a or not b:
        return a == b
    # Containment rather than Jaccard: a short chunk wholly inside a longer one is a duplicate too.
    return len(a & b) / min(len(a), len(b)) >= threshold


def collapse_duplicates(hits: Sequence[Hit], threshold: float = 0.9) -> list[Hit]:
    """Keep the first of every group of near-identical chunks (shared 4-word shingles ≥ ``threshold``
    of the smaller one). Overlapping neighbours of one section are left alone: merging handles them."""
    return list(_distinct(hits, threshold))


def _distinct(hits: Iterable[Hit], threshold: float = 0.9) -> Iterator[Hit]:
    """The hits :func:`collapse_duplicates` keeps, one at a time, so a caller may stop early."""
    kept: list[Hit] = []
    kept_shingles: list[frozenset[int]] = []
    for h in hits:
        s = shingles(h.chunk.text)
        if any(
            _similar(s, other, threshold) and not neighbours(h.chunk, k.chunk)
            for k, other in zip(kept, kept_shingles, strict=True)
        ):
            continue
        kept.append(h)
        kept_shingles.append(s)
        yield h


def diversify(hits: Sequence[Hit], max_per_page: int | None) -> list[Hit]:
    """Move every chunk beyond the first ``max_per_page`` of its page behind the others (order kept)."""
    if not max_per_page:
        return list(hits)
    seen: dict[str, int] = {}
    first: list[Hit] = []
    rest: list[Hit] = []
    for h in hits:
        n = seen.get(h.chunk.doc_id, 0)
        seen[h.chunk.doc_id] = n + 1
        (first if n < max_per_page else rest).append(h)
    return first + rest


def shape(hits: Sequence[Hit], depth: int, *, dedupe: bool, max_per_page: int | None) -> list[Hit]:
    """The first ``depth`` of ``diversify(collapse_duplicates(hits), max_per_page)`` (without dedupe when
    ``dedupe`` is false), computed lazily: it stops once ``depth`` hits have passed both, so a search that
    fetched a hundred candidates to fill five blocks compares a few dozen of them, not all."""
    seen: dict[str, int] = {}
    first: list[Hit] = []
    rest: list[Hit] = []
    for h in _distinct(hits) if dedupe else hits:
        n = seen.get(h.chunk.doc_id, 0)
        seen[h.chunk.doc_id] = n + 1
        if not max_per_page or n < max_per_page:
            first.append(h)
            if len(first) == depth:  # every later hit would land behind these
                return first
        else:
            rest.append(h)
    return (first + rest)[:depth]


def neighbours(a: Chunk, b: Chunk) -> bool:
    """Same document and section, and the two pieces touch or overlap in the document text."""
    if a.doc_id != b.doc_id or a.section != b.section or a.anchor != b.anchor or a.doc_hash != b.doc_hash:
        return False
    lo, hi = (a, b) if a.start <= b.start else (b, a)
    return hi.start <= lo.end + 2  # sections' pieces are separated by at most a blank line


def join_chunks(a: Chunk, b: Chunk) -> Chunk:
    """One chunk spanning both (a starts first); the overlap appears once."""
    if b.end <= a.end:
        return a
    tail = b.text[max(a.end - b.start, 0) :]
    gap = "" if b.start <= a.end else "\n\n"
    ids = [*a.metadata.get("chunk_ids", [a.id]), *b.metadata.get("chunk_ids", [b.id])]
    return replace(
        a,
        text=a.text + gap + tail,
        end=b.end,
        metadata={**a.metadata, "chunk_ids": list(dict.fromkeys(ids))},
    )


def merge_adjacent(hits: Sequence[Hit]) -> list[Hit]:
    """Join hits whose chunks are neighbours in one section into one hit at the best one's place.

    The merged chunk spans from the first piece's start to the last one's end, keeps the best score,
    and lists its pieces' point ids in ``metadata["chunk_ids"]``.
    """
    merged: list[Hit] = []
    for h in hits:
        for i, m in enumerate(merged):
            if neighbours(m.chunk, h.chunk):
                lo, hi = (m.chunk, h.chunk) if m.chunk.start <= h.chunk.start else (h.chunk, m.chunk)
                merged[i] = Hit(join_chunks(lo, hi), max(m.score, h.score))
                break
        else:
            merged.append(h)
    # A join can make a block touch another block of the same section: repeat until nothing changes.
    return merged if len(merged) == len(hits) else merge_adjacent(merged)
