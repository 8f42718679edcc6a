"""Memory layouts (QdrantSettings.quantization, on_disk_vectors, on_disk_payload): an index made with them
records them and still searches correctly, against numpy as the reference."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ragline.config import QdrantSettings
from ragline.records import Chunk
from ragline.store import EdgeStore, QdrantStore, make_store
from ragline.store.base import IndexInfo
from ragline.store.following import FollowingStore

# Large enough that the engine indexes the segment (HNSW) and builds its int8 copy of the vectors.
DIM, N = 384, 8000
INFO = IndexInfo(model="test/model-a", dimension=DIM)


def points(n: int = N) -> tuple[list[Chunk], np.ndarray]:
    # Clustered like embeddings are, so the nearest neighbours stand out from the rest.
    rng = np.random.default_rng(3)
    centres = rng.normal(size=(max(1, n // 20), DIM))
    vectors = (centres[np.arange(n) % len(centres)] + rng.normal(0, 0.6, size=(n, DIM))).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    chunks = [
        Chunk(
            doc_id=f"doc{i}",
            source=f"/docs/page{i}.md",
            title=f"page {i}",
            section="",
            anchor=None,
            text=f"word{i % 97} and word{i % 89} in chunk {i}",
            start=0,
            end=10,
            index=0,
        )
        for i in range(n)
    ]
    return chunks, vectors


def test_quantised_on_disk_index_searches_like_numpy(tmp_path: Path) -> None:
    settings = QdrantSettings(quantization="int8", on_disk_vectors=True, on_disk_payload=True)
    store = make_store(settings, tmp_path)
    assert isinstance(store, FollowingStore)  # the embedded engine, over the published generation
    chunks, vectors = points()
    with store:
        store.open(INFO)
        store.upsert(chunks, vectors)
        store.flush()  # builds the HNSW graph and the quantised vectors

    config = json.loads((tmp_path / "index" / "shard" / "edge_config.json").read_text())
    dense = config["vectors"]["dense"]
    assert dense["quantization_config"]["scalar"]["type"] == "int8"
    assert dense["memory"] == "cold"
    assert config["payload_memory"] == "cold"
    assert list((tmp_path / "index" / "shard").rglob("quantized.data")), "no quantised vectors were built"

    # A fresh store (default settings) opens it as it was made.
    rng = np.random.default_rng(11)
    queries = vectors[rng.choice(N, 20, replace=False)] + rng.normal(0, 0.02, size=(20, DIM)).astype(np.float32)
    with EdgeStore(tmp_path / "index") as reopened:
        for query in queries:
            q = query / np.linalg.norm(query)
            exact = np.argsort(-(vectors @ q))[:10]
            hits = reopened.search(q, 10)
            got = [int(h.chunk.doc_id.removeprefix("doc")) for h in hits]
            assert got[0] == exact[0]
            assert len(set(got) & set(exact.tolist())) >= 8
            # Rescored with the original vectors: the cosine score itself, not its int8 estimate.
            assert abs(hits[0].score - float(vectors[exact[0]] @ q)) < 1e-4
        assert [h.chunk.doc_id for h in reopened.search(None, 3, text="word5 word7", mode="bm25")]


def test_qdrant_client_collection_gets_the_layout() -> None:
    store = QdrantStore(quantization="int8", on_disk_vectors=True, on_disk_payload=False)
    chunks, vectors = points(50)
    with store:
        store.open(INFO)
        store.upsert(chunks, vectors)
        params = store.engine.conn().get_collection(store.collection).config.params
        dense = params.vectors["dense"]  # type: ignore[index]
        assert dense.on_disk is True
        assert dense.quantization_config.scalar.type == "int8"
        assert params.sparse_vectors["bm25"].index.on_disk is True  # type: ignore[index, union-attr]
        assert store.search(vectors[7], 1)[0].chunk.doc_id == "doc7"
