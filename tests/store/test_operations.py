"""The operations part of the VectorStore contract, on every backend: delete by filter, snapshot, restore.

Dense and BM25 vectors live in the same points, so a delete must leave neither behind: each delete test
searches in every mode. A restore must give back exactly the snapshot's points and rankings.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from ragline.errors import BadRequestError, EmptyIndexError, StoreError
from ragline.records import Chunk
from ragline.store.base import SEARCH_MODES, Prefix, VectorStore

from .test_contract import BACKENDS, INFO, Backend, doc_id, unit_vectors

SITE = "https://docs.example.org/en/latest/"
# Sources and the distinctive text of their only chunk; two live under serve/, one is a sibling folder name.
PAGES = {
    f"{SITE}serve/autoscaling.html": "Autoscaling adds replicas when requests queue up",
    f"{SITE}serve/batching.html": "Batching groups requests to use the accelerator better",
    f"{SITE}serve-legacy/notes.html": "Legacy notes about the deprecated gateway",
    f"{SITE}data/parquet.html": "Datasets read Parquet files from cloud storage",
    "/home/u/notes/tips.md": "Placement groups reserve resources for gang scheduling",
}
SERVE_PREFIX = f"{SITE}serve/"


def page_chunks() -> list[Chunk]:
    return [
        Chunk(
            doc_id=doc_id(source),
            source=source,
            title="",
            section="",
            anchor=None,
            text=text,
            start=0,
            end=len(text),
            index=0,
            doc_hash="h1",
        )
        for source, text in PAGES.items()
    ]


@pytest.fixture(params=BACKENDS, ids=lambda b: b.name)
def backend(request: pytest.FixtureRequest) -> Backend:
    return request.param


@pytest.fixture
def store(backend: Backend, tmp_path: Path) -> Iterator[VectorStore]:
    s = backend.make(tmp_path)
    yield s
    s.close()


@pytest.fixture
def pages(store: VectorStore) -> tuple[VectorStore, list[Chunk], np.ndarray]:
    chunks = page_chunks()
    vectors = unit_vectors(len(chunks), seed=5)
    store.open(INFO)
    store.upsert(chunks, vectors)
    return store, chunks, vectors


def found(store: VectorStore, vector: np.ndarray, text: str, mode: str) -> list[str]:
    return [h.chunk.source for h in store.search(vector, 10, text=text, mode=mode)]  # type: ignore[arg-type]


def rankings(store: VectorStore, chunks: list[Chunk], vectors: np.ndarray) -> dict[tuple[int, str], list[str]]:
    """Every mode's ranking for each chunk's own vector and text: a fingerprint of the index."""
    return {
        (i, mode): [h.chunk.id for h in store.search(vectors[i], 10, text=c.text, mode=mode)]
        for i, c in enumerate(chunks)
        for mode in SEARCH_MODES
    }


# -- delete by filter ------------------------------------------------------------------------------


def test_delete_by_source_prefix_removes_dense_and_bm25(pages: tuple[VectorStore, list[Chunk], np.ndarray]) -> None:
    store, chunks, vectors = pages
    assert f"{SITE}serve/autoscaling.html" in found(store, vectors[0], "autoscaling replicas", "bm25")

    assert store.delete({"source": Prefix(SERVE_PREFIX)}) == 2

    assert store.count() == 3
    assert store.count({"source": Prefix(SERVE_PREFIX)}) == 0
    assert {d.source for d in store.documents()} == set(PAGES) - {c.source for c in chunks[:2]}
    for i in (0, 1):  # neither the words nor the vectors of the deleted chunks find them any more
        for mode in SEARCH_MODES:
            assert not any(s.startswith(SERVE_PREFIX) for s in found(store, vectors[i], chunks[i].text, mode)), mode
    # the sibling folder "serve-legacy/" is not under "serve/"
    assert f"{SITE}serve-legacy/notes.html" in found(store, vectors[2], "legacy gateway", "bm25")


def test_delete_by_prefix_without_slash_means_the_folder(pages: tuple[VectorStore, list[Chunk], np.ndarray]) -> None:
    store, _, _ = pages
    assert store.delete({"source": Prefix(f"{SITE}serve")}) == 2
    assert store.count({"source": f"{SITE}serve-legacy/notes.html"}) == 1


def test_delete_by_exact_source_and_by_path_prefix(pages: tuple[VectorStore, list[Chunk], np.ndarray]) -> None:
    store, _, _ = pages
    assert store.delete({"source": f"{SITE}data/parquet.html"}) == 1
    assert store.delete({"source": Prefix("/home/u/")}) == 1
    assert store.search(None, 5, text="parquet", mode="bm25") == []
    assert store.search(None, 5, text="placement gang scheduling", mode="bm25") == []
    assert store.count() == 3


def test_delete_matching_nothing_changes_nothing(pages: tuple[VectorStore, list[Chunk], np.ndarray]) -> None:
    store, chunks, _ = pages
    assert store.delete({"source": Prefix("https://elsewhere.example/")}) == 0
    assert store.count() == len(chunks)


@pytest.mark.parametrize("filters", [{}, None], ids=["empty", "none"])
def test_delete_refuses_to_delete_everything(pages: tuple[VectorStore, list[Chunk], np.ndarray], filters) -> None:  # type: ignore[no-untyped-def]
    store, chunks, _ = pages
    with pytest.raises(BadRequestError, match="at least one filter"):
        store.delete(filters)
    assert store.count() == len(chunks)


def test_delete_without_index_is_zero(store: VectorStore) -> None:
    assert store.delete({"source": Prefix(SERVE_PREFIX)}) == 0


# -- snapshot and restore --------------------------------------------------------------------------


def test_restore_gives_back_the_snapshot_exactly(
    pages: tuple[VectorStore, list[Chunk], np.ndarray], tmp_path: Path
) -> None:
    store, chunks, vectors = pages
    before_points = dict(store.points())
    before = rankings(store, chunks, vectors)
    store.snapshot(tmp_path / "snap")

    # changes after the snapshot: a deletion, a new page, a replaced page
    store.delete({"source": Prefix(SERVE_PREFIX)})
    extra = page_chunks()[3]
    newer = Chunk.from_payload({**extra.payload(), "text": "Parquet rewritten", "doc_hash": "h2"})
    store.upsert([newer], unit_vectors(1, seed=99))
    assert store.count() != len(chunks) or dict(store.points()) != before_points

    store.restore(tmp_path / "snap")

    assert store.info() == INFO
    assert store.count() == len(chunks)
    assert dict(store.points()) == before_points
    assert rankings(store, chunks, vectors) == before
    assert store.search(None, 5, text="rewritten", mode="bm25") == []


def test_snapshot_of_no_index_raises(store: VectorStore, tmp_path: Path) -> None:
    with pytest.raises(EmptyIndexError):
        store.snapshot(tmp_path / "snap")


def test_restore_from_a_folder_without_snapshot_raises(
    pages: tuple[VectorStore, list[Chunk], np.ndarray], tmp_path: Path
) -> None:
    store, chunks, _ = pages
    (tmp_path / "empty").mkdir()
    with pytest.raises(StoreError):
        store.restore(tmp_path / "empty")
    assert store.count() == len(chunks)  # the live index is untouched


def test_a_restore_whose_check_fails_leaves_the_index_as_it_was(
    pages: tuple[VectorStore, list[Chunk], np.ndarray], tmp_path: Path
) -> None:
    store, chunks, vectors = pages
    store.snapshot(tmp_path / "snap")
    store.delete({"source": Prefix(SERVE_PREFIX)})  # the index now differs from the snapshot
    before_points, before = dict(store.points()), rankings(store, chunks, vectors)
    seen: list[int] = []

    def check(staged: VectorStore) -> None:
        seen.append(staged.count())  # the staged copy is whole and searchable before the swap
        assert staged.search(vectors[0], 1, text=chunks[0].text, mode="hybrid")[0].chunk.id == chunks[0].id
        raise StoreError("the copy does not match")

    with pytest.raises(StoreError, match="does not match"):
        store.restore(tmp_path / "snap", check)
    assert seen == [len(chunks)]
    assert dict(store.points()) == before_points and rankings(store, chunks, vectors) == before
    store.restore(tmp_path / "snap", lambda staged: None)  # a passing check swaps the copy in
    assert store.count() == len(chunks)


@pytest.mark.persistent
def test_restored_index_survives_reopen(
    pages: tuple[VectorStore, list[Chunk], np.ndarray], backend: Backend, tmp_path: Path
) -> None:
    store, chunks, vectors = pages
    before = rankings(store, chunks, vectors)
    store.snapshot(tmp_path / "snap")
    store.delete({"source": Prefix(SITE)})
    store.restore(tmp_path / "snap")
    store.close()
    again = backend.make(tmp_path)
    try:
        again.open(INFO)
        assert again.count() == len(chunks)
        assert rankings(again, chunks, vectors) == before
    finally:
        again.close()
