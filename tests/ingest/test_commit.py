"""The commit protocol on the embedded Qdrant engine: chunks arriving in pieces, out of order, twice, from the
writer stage; a document exists for the next run only once it is whole. Vectors are arbitrary unit vectors:
the protocol never looks at them."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from ragline.ingest.changes import Change, IndexState
from ragline.ingest.stages import CHUNK, DOC, write_chunks
from ragline.ingest.writer import StreamCommitter, commit_order
from ragline.records import Chunk
from ragline.store.base import IndexInfo
from ragline.store.edge import EdgeStore

DIM = 8
SOURCE = "https://docs.example.com/guide.html"


def _chunks(doc_hash: str, n: int) -> list[Chunk]:
    return [
        Chunk(
            doc_id="d1",
            source=SOURCE,
            title="Guide",
            section=f"S{i}",
            anchor=None,
            text=f"part {i} of {doc_hash}",
            start=0,
            end=1,
            index=i,
            doc_hash=doc_hash,
        )
        for i in range(n)
    ]


def _batch(rows: list[Chunk], seed: int) -> dict[str, np.ndarray]:
    vectors = np.random.default_rng(seed).normal(size=(len(rows), DIM)).astype(np.float32)
    return {
        "row": np.array([CHUNK] * len(rows), dtype=object),
        "seq": np.zeros(len(rows), dtype=np.int64),
        "doc_id": np.array([c.doc_id for c in rows], dtype=object),
        "doc_hash": np.array([c.doc_hash for c in rows], dtype=object),
        "source": np.array([c.source for c in rows], dtype=object),
        "fallback": np.array([""] * len(rows), dtype=object),
        "change": np.array([Change.ADDED.value] * len(rows), dtype=object),
        "reason": np.array([""] * len(rows), dtype=object),
        "count": np.zeros(len(rows), dtype=np.int64),
        "index": np.array([c.index for c in rows], dtype=np.int64),
        "chunk": np.array([pickle.dumps(c) for c in rows], dtype=object),
        "vector": vectors / np.linalg.norm(vectors, axis=1, keepdims=True),
    }


def _feed(committer: StreamCommitter, out: dict[str, np.ndarray]) -> None:
    """What the Ray engine's driver does with the writer stage's output."""
    for i, kind in enumerate(out["row"]):
        if kind == CHUNK:
            committer.hold_first(pickle.loads(out["chunk"][i]), out["vector"][i])
        elif kind != DOC:
            indexes = [int(x) for x in str(out["written"][i]).split(",")]
            committer.wrote(str(out["doc_id"][i]), str(out["doc_hash"][i]), indexes)


@pytest.fixture
def store(tmp_path: Path) -> EdgeStore:
    s = EdgeStore(tmp_path / "index")
    s.open(IndexInfo(model="test", dimension=DIM))
    yield s
    s.close()


def test_commit_order_puts_first_chunks_last() -> None:
    chunks = _chunks("h", 3) + _chunks("g", 2)
    assert [c.index for c in commit_order(chunks)] == [1, 2, 1, 0, 0]


def test_a_version_is_visible_only_once_whole(store: EdgeStore) -> None:
    old, new = _chunks("old", 3), _chunks("new", 4)
    committer = StreamCommitter(store)
    committer.expect("d1", "old", 3)
    _feed(committer, write_chunks(store, _batch(old, 0)))
    assert IndexState(store.documents()).hashes["d1"] == {"old"}

    committer.expect("d1", "new", 4)
    # The first chunk and chunk 3 arrive first, chunk 3 again later (a retried task), chunks 1-2 last.
    _feed(committer, write_chunks(store, _batch([new[3], new[0]], 1)))
    _feed(committer, write_chunks(store, _batch([new[3]], 2)))
    assert IndexState(store.documents()).hashes["d1"] == {"old"}  # the new version is not there yet
    assert committer.pending == 1
    _feed(committer, write_chunks(store, _batch([new[2], new[1]], 3)))
    assert committer.pending == 0
    assert IndexState(store.documents()).hashes["d1"] == {"new"}
    assert {pid for pid, _ in store.points()} == {c.id for c in new}  # the old version is gone


def test_a_document_without_chunks_still_commits(store: EdgeStore) -> None:
    committer = StreamCommitter(store)
    _feed(committer, write_chunks(store, _batch(_chunks("old", 2), 4)))
    committer.expect("d1", "old", 2)
    committer.expect("d1", "empty", 0)
    assert committer.pending == 0
    assert store.count() == 0
