"""The in-process writer in the background: a batch is embedded while the one before it is written, writes keep
their order and every chunk lands; a failed write stops the writing. The store is the embedded Qdrant engine;
the embedder is the hash embedder of tests/fakes.py (this is the writer's plumbing; tests/ingest/test_faults.py
and the end-to-end tests run it with the real model)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from fakes import HashEmbedder

from ragline.ingest.writer import IndexWriter
from ragline.records import Chunk
from ragline.store.base import IndexInfo
from ragline.store.edge import EdgeStore

DIM = 8
WAIT = 30.0  # seconds an event may take before the test reports it never came


def _doc(n: int, chunks: int) -> list[Chunk]:
    return [
        Chunk(
            doc_id=f"d{n}",
            source=f"https://docs.example.com/{n}.html",
            title=f"Page {n}",
            section="S",
            anchor=None,
            text=f"page {n} part {i}",
            start=0,
            end=1,
            index=i,
            doc_hash=f"h{n}",
        )
        for i in range(chunks)
    ]


class _Embedder(HashEmbedder):
    """The hash embedder, noting each call's documents and when it was warmed up."""

    def __init__(self) -> None:
        super().__init__(DIM)
        self.calls: list[set[str]] = []  # the doc ids of each call
        self.called = [threading.Event() for _ in range(8)]
        self.warmed_before: int | None = None

    def warm_up(self) -> None:
        self.warmed_before = len(self.calls)  # how many embedding calls came before the warm-up

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append({t.split()[1] for t in texts})
        self.called[len(self.calls) - 1].set()
        return super().embed_documents(texts)


class _Store(EdgeStore):
    """The real store, noting each write's documents; ``hold`` makes one write wait for an event."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.writes: list[set[str]] = []
        self.hold: tuple[int, threading.Event] | None = None
        self.fail_at: int | None = None
        self.released: bool | None = None  # whether the held write saw its event (False: it timed out)

    def upsert(self, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        n = len(self.writes)
        self.writes.append({c.doc_id for c in chunks})
        if self.hold is not None and self.hold[0] == n:
            self.released = self.hold[1].wait(WAIT)
        if self.fail_at == n:
            raise OSError("disk full")
        super().upsert(chunks, vectors)


@pytest.fixture
def store(tmp_path: Path) -> _Store:
    s = _Store(tmp_path / "index")
    s.open(IndexInfo(model="test", dimension=DIM))
    return s


def _add_docs(writer: IndexWriter, docs: range, chunks: int = 4) -> None:
    for n in docs:
        writer.add(f"d{n}", f"h{n}", _doc(n, chunks))


def test_the_next_batch_is_embedded_while_the_previous_one_is_written(store: _Store) -> None:
    embedder = _Embedder()
    # The first write waits until the second batch's embedding has begun: a writer that embeds and writes
    # in one thread would keep it waiting the whole WAIT and then embed the second batch.
    store.hold = (0, embedder.called[1])
    writer = IndexWriter(store, embedder, batch_chunks=8, background=True)  # two documents a batch
    try:
        _add_docs(writer, range(6))
        writer.flush()
    finally:
        writer.close()
    assert store.released is True and len(embedder.calls) == 3
    assert store.writes == [{"d0", "d1"}, {"d2", "d3"}, {"d4", "d5"}]  # in batch order
    assert writer.written == 24 and store.count() == 24
    assert {d.doc_id for d in store.documents()} == {f"d{n}" for n in range(6)}


def test_flush_counts_every_chunk_once(store: _Store) -> None:
    writer = IndexWriter(store, _Embedder(), batch_chunks=8, background=True)
    try:
        returned = 0
        for n in range(7):  # the last batch is partial: flushed, not filled
            returned += writer.add(f"d{n}", f"h{n}", _doc(n, 4))
        returned += writer.flush()
    finally:
        writer.close()
    assert returned == 28 == store.count()


def test_a_failed_write_is_raised_and_nothing_after_it_is_written(store: _Store) -> None:
    store.fail_at = 1
    writer = IndexWriter(store, _Embedder(), batch_chunks=8, background=True)
    with pytest.raises(OSError, match="disk full"):
        try:
            _add_docs(writer, range(10))
            writer.flush()
        finally:
            writer.close()
    assert store.writes == [{"d0", "d1"}, {"d2", "d3"}]  # the failed one last: those queued behind it dropped
    assert {d.doc_id for d in store.documents()} == {"d0", "d1"}  # only the batch before the failure


def test_start_loads_the_model_at_once_and_makes_the_first_batch_small(store: _Store) -> None:
    embedder = _Embedder()
    writer = IndexWriter(store, embedder, batch_chunks=64, background=True)
    writer.start()
    try:
        _add_docs(writer, range(20))  # 4 chunks each
        writer.flush()
    finally:
        writer.close()
    assert embedder.warmed_before == 0  # warmed up before any chunk was embedded
    assert [len(w) for w in store.writes] == [8, 12]  # 32 chunks first (FIRST_BATCH), then up to 64
    assert store.count() == 80
