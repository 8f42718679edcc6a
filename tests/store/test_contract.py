"""One contract for every VectorStore: the same calls must give the same answers on each backend.

Backends: the embedded engine (EdgeStore, on disk), and qdrant-client's local mode (in memory and on disk)
standing in for a Qdrant server. Vectors are small random unit vectors; rankings are checked against numpy.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ragline.config import QdrantSettings
from ragline.errors import BadRequestError, EmptyIndexError, IndexMismatchError, StoreError
from ragline.ray_local import free_port
from ragline.records import Chunk, Document
from ragline.store import EdgeStore, QdrantStore, make_store
from ragline.store.base import Fusion, IndexInfo, Prefix, StoredDocument, VectorStore
from ragline.store.filters import conditions, source_prefixes
from ragline.store.following import FollowingStore

DIM = 8
INFO = IndexInfo(model="test/model-a", dimension=DIM)
SERVE = "https://docs.ray.io/en/master/serve/index.html"
BATCHING = "https://docs.ray.io/en/master/serve/advanced/batching.html"
DATA = "https://docs.ray.io/en/master/data/overview.html"
NOTES = "/home/u/notes/serve.md"


@dataclass(frozen=True)
class Backend:
    name: str
    make: Callable[[Path], VectorStore]
    persistent: bool


BACKENDS = [
    Backend("edge", lambda tmp: EdgeStore(tmp / "index"), persistent=True),
    Backend("qdrant-memory", lambda tmp: QdrantStore(), persistent=False),
    Backend("qdrant-path", lambda tmp: QdrantStore(path=str(tmp / "qdrant")), persistent=True),
    # What make_store builds for a qdrant-client path: the collection name as an alias, generations behind it.
    Backend(
        "qdrant-alias", lambda tmp: make_store(QdrantSettings(path=str(tmp / "qdrant")), tmp / "data"), persistent=True
    ),
]


def doc_id(source: str) -> str:
    return Document.from_sections(source, "t", "text", []).doc_id


def make_chunks(source: str, n: int, *, doc_hash: str = "h1", version: str = "v1", **fields: Any) -> list[Chunk]:
    return [
        Chunk(
            doc_id=doc_id(source),
            source=source,
            title=f"title of {source}",
            section=f"section {i}",
            anchor=f"s{i}" if i else None,
            text=f"{version} text {i} of {source}",
            start=i * 100,
            end=i * 100 + 50,
            index=i,
            doc_hash=doc_hash,
            **fields,
        )
        for i in range(n)
    ]


def corpus() -> list[Chunk]:
    return [
        *make_chunks(
            SERVE, 3, kind="html", origin="https://docs.ray.io/", metadata={"tenant": "a", "year": 2024, "draft": False}
        ),
        *make_chunks(
            BATCHING,
            2,
            kind="html",
            origin="https://docs.ray.io/",
            metadata={"tenant": "b", "year": 2023, "draft": True},
        ),
        *make_chunks(
            DATA, 2, kind="html", origin="https://docs.ray.io/", metadata={"tenant": "a", "year": 2023, "draft": False}
        ),
        *make_chunks(NOTES, 2, kind="markdown", origin="/home/u/notes", metadata={"tenant": "b", "year": 2024}),
    ]


def unit_vectors(n: int, seed: int = 7, dim: int = DIM) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def ranking(vectors: np.ndarray, query: np.ndarray, mask: list[bool] | None = None) -> list[int]:
    """Row indices by cosine similarity to ``query``, best first (numpy as the reference)."""
    scores = vectors @ (query / np.linalg.norm(query))
    rows = [i for i in range(len(vectors)) if mask is None or mask[i]]
    return sorted(rows, key=lambda i: -scores[i])


@pytest.fixture(params=BACKENDS, ids=lambda b: b.name)
def backend(request: pytest.FixtureRequest) -> Backend:
    return request.param


@pytest.fixture
def store(backend: Backend, tmp_path: Path) -> Iterator[VectorStore]:
    s = backend.make(tmp_path)
    yield s
    s.close()


@dataclass
class Loaded:
    store: VectorStore
    chunks: list[Chunk]
    vectors: np.ndarray


@pytest.fixture
def loaded(store: VectorStore) -> Loaded:
    chunks = corpus()
    vectors = unit_vectors(len(chunks))
    store.open(INFO)
    store.upsert(chunks, vectors)
    return Loaded(store, chunks, vectors)


def reopen(backend: Backend, tmp_path: Path, old: VectorStore) -> VectorStore:
    assert backend.persistent, "deselected for in-memory backends (see conftest.py)"
    old.close()
    return backend.make(tmp_path)


# -- open, info, persistence ------------------------------------------------------------------------


def test_no_index_before_open(store: VectorStore) -> None:
    assert store.info() is None
    assert store.count() == 0
    assert list(store.documents()) == []
    assert list(store.points()) == []


def test_open_records_info(store: VectorStore) -> None:
    store.open(INFO)
    assert store.info() == INFO
    assert store.count() == 0


@pytest.mark.persistent
def test_reopen_keeps_points_and_info(loaded: Loaded, backend: Backend, tmp_path: Path) -> None:
    loaded.store.flush()
    again = reopen(backend, tmp_path, loaded.store)
    try:
        assert again.info() == INFO  # readable before open()
        again.open(INFO)
        assert again.count() == len(loaded.chunks)
        hits = again.search(loaded.vectors[4], 1)
        assert hits[0].chunk == loaded.chunks[4]
    finally:
        again.close()


@pytest.mark.persistent
def test_reopen_without_flush_keeps_points(loaded: Loaded, backend: Backend, tmp_path: Path) -> None:
    again = reopen(backend, tmp_path, loaded.store)  # close() alone must make writes durable
    try:
        assert again.count() == len(loaded.chunks)
    finally:
        again.close()


@pytest.mark.parametrize(
    "other", [IndexInfo("test/model-b", DIM), IndexInfo(INFO.model, 16)], ids=["model", "dimension"]
)
def test_mismatch_raises(loaded: Loaded, other: IndexInfo) -> None:
    with pytest.raises(IndexMismatchError) as err:
        loaded.store.open(other)
    message = str(err.value)
    assert INFO.model in message and other.model in message and "--recreate" in message
    assert loaded.store.count() == len(loaded.chunks)  # nothing was touched


@pytest.mark.persistent
def test_mismatch_after_reopen(loaded: Loaded, backend: Backend, tmp_path: Path) -> None:
    again = reopen(backend, tmp_path, loaded.store)
    try:
        with pytest.raises(IndexMismatchError, match="test/model-b"):
            again.open(IndexInfo("test/model-b", DIM))
    finally:
        again.close()


def test_recreate_wipes(loaded: Loaded) -> None:
    other = IndexInfo("test/model-b", 16)
    loaded.store.open(other, recreate=True)
    assert loaded.store.info() == other
    assert loaded.store.count() == 0
    chunks = make_chunks(SERVE, 2)
    loaded.store.upsert(chunks, unit_vectors(2, dim=16))
    assert loaded.store.count() == 2


def test_write_before_open_raises(store: VectorStore) -> None:
    with pytest.raises(StoreError, match="open"):
        store.upsert(make_chunks(SERVE, 1), unit_vectors(1))


def test_vectors_must_fit(store: VectorStore) -> None:
    store.open(INFO)
    with pytest.raises(StoreError):
        store.upsert(make_chunks(SERVE, 2), unit_vectors(3))
    with pytest.raises(IndexMismatchError):
        store.upsert(make_chunks(SERVE, 2), unit_vectors(2, dim=DIM + 1))
    assert store.count() == 0


# -- upsert and search ------------------------------------------------------------------------------


def test_upsert_is_idempotent(loaded: Loaded) -> None:
    loaded.store.upsert(loaded.chunks, loaded.vectors)
    assert loaded.store.count() == len(loaded.chunks)
    assert {pid for pid, _ in loaded.store.points()} == {c.id for c in loaded.chunks}


def test_upsert_replaces_vector(loaded: Loaded) -> None:
    target = loaded.vectors[0].copy()
    moved = loaded.vectors.copy()
    moved[0] = -target  # chunk 0 now points away from its old direction
    loaded.store.upsert(loaded.chunks, moved)
    assert loaded.store.search(target, 1)[0].chunk.id != loaded.chunks[0].id
    assert loaded.store.search(-target, 1)[0].chunk.id == loaded.chunks[0].id


@pytest.mark.parametrize("k", [1, 3, 5])
def test_search_top_k_by_cosine(loaded: Loaded, k: int) -> None:
    query = loaded.vectors[2] + 0.05 * unit_vectors(1, seed=99)[0]
    hits = loaded.store.search(query, k)
    assert len(hits) == k
    expected = ranking(loaded.vectors, query)[:k]
    assert [h.chunk.id for h in hits] == [loaded.chunks[i].id for i in expected]
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)
    cosine = float(loaded.vectors[expected[0]] @ (query / np.linalg.norm(query)))
    assert scores[0] == pytest.approx(cosine, abs=1e-4)


def test_exact_vector_comes_first(loaded: Loaded) -> None:
    for i in (0, 5, 8):
        hit = loaded.store.search(loaded.vectors[i], 3)[0]
        assert hit.chunk.id == loaded.chunks[i].id
        assert hit.score == pytest.approx(1.0, abs=1e-4)


def test_search_returns_whole_chunks(loaded: Loaded) -> None:
    hits = loaded.store.search(loaded.vectors[6], 1)
    assert hits[0].chunk == loaded.chunks[6]  # payload round-trip keeps every field


def test_k_larger_than_index(loaded: Loaded) -> None:
    assert len(loaded.store.search(loaded.vectors[0], 50)) == len(loaded.chunks)


def test_k_must_be_positive(loaded: Loaded) -> None:
    with pytest.raises(BadRequestError):
        loaded.store.search(loaded.vectors[0], 0)


def test_score_threshold(loaded: Loaded) -> None:
    query = loaded.vectors[1]
    scores = np.sort(loaded.vectors @ query)[::-1]
    threshold = float((scores[2] + scores[3]) / 2)
    hits = loaded.store.search(query, 10, score_threshold=threshold)
    assert len(hits) == 3
    assert all(h.score >= threshold for h in hits)


# -- filters ----------------------------------------------------------------------------------------

FILTER_CASES: list[tuple[str, dict[str, Any], Callable[[Chunk], bool]]] = [
    ("exact", {"kind": "markdown"}, lambda c: c.kind == "markdown"),
    ("exact-int", {"chunk_index": 1}, lambda c: c.index == 1),
    ("list", {"doc_id": [doc_id(SERVE), doc_id(NOTES)]}, lambda c: c.source in (SERVE, NOTES)),
    (
        "prefix-slash",
        {"source": Prefix("https://docs.ray.io/en/master/serve/")},
        lambda c: c.source in (SERVE, BATCHING),
    ),
    (
        "prefix-no-slash",
        {"source": Prefix("https://docs.ray.io/en/master/serve")},
        lambda c: c.source in (SERVE, BATCHING),
    ),
    ("prefix-host", {"source": Prefix("https://docs.ray.io")}, lambda c: c.source != NOTES),
    ("prefix-whole-source", {"source": Prefix(DATA)}, lambda c: c.source == DATA),
    ("prefix-mid-segment", {"source": Prefix("https://docs.ray.io/en/master/ser")}, lambda c: False),
    ("prefix-path", {"source": Prefix("/home/u/notes")}, lambda c: c.source == NOTES),
    ("metadata", {"metadata.tenant": "b"}, lambda c: c.metadata["tenant"] == "b"),
    ("metadata-int", {"metadata.year": 2024}, lambda c: c.metadata["year"] == 2024),
    ("metadata-bool", {"metadata.draft": True}, lambda c: c.metadata.get("draft") is True),
    ("metadata-list", {"metadata.year": [2023, 2025]}, lambda c: c.metadata["year"] == 2023),
    ("and", {"metadata.tenant": "a", "metadata.year": 2023}, lambda c: c.source == DATA),
    ("empty-list", {"kind": []}, lambda c: False),
]


@pytest.mark.parametrize(("filters", "wanted"), [c[1:] for c in FILTER_CASES], ids=[c[0] for c in FILTER_CASES])
def test_filters(loaded: Loaded, filters: dict[str, Any], wanted: Callable[[Chunk], bool]) -> None:
    mask = [wanted(c) for c in loaded.chunks]
    assert loaded.store.count(filters) == sum(mask)
    assert {pid for pid, _ in loaded.store.points(filters)} == {
        c.id for c, m in zip(loaded.chunks, mask, strict=True) if m
    }
    query = unit_vectors(1, seed=3)[0]
    hits = loaded.store.search(query, len(loaded.chunks), filters=filters)
    assert [h.chunk.id for h in hits] == [loaded.chunks[i].id for i in ranking(loaded.vectors, query, mask)]


def test_filter_and_threshold_combine(loaded: Loaded) -> None:
    query = loaded.vectors[3]  # a BATCHING chunk
    hits = loaded.store.search(query, 10, filters={"metadata.tenant": "b"}, score_threshold=0.99)
    assert [h.chunk.id for h in hits] == [loaded.chunks[3].id]


@pytest.mark.parametrize(
    "filters",
    [{"metadata.score": 0.5}, {"kind": None}, {"doc_id": ["a", 1]}, {"kind": Prefix("h")}, {"source": Prefix("")}],
    ids=["float", "none", "mixed-list", "prefix-not-source", "empty-prefix"],
)
def test_bad_filters_raise(loaded: Loaded, filters: dict[str, Any]) -> None:
    with pytest.raises(BadRequestError):
        loaded.store.search(loaded.vectors[0], 3, filters=filters)


def test_payload_has_source_prefixes(loaded: Loaded) -> None:
    payloads = {pid: p for pid, p in loaded.store.points({"doc_id": doc_id(SERVE)})}
    assert len(payloads) == 3
    for p in payloads.values():
        assert p["source_prefixes"] == source_prefixes(SERVE)


# -- documents, deletes, counts ---------------------------------------------------------------------


def expected_documents(chunks: list[Chunk]) -> set[StoredDocument]:
    return {StoredDocument(c.doc_id, c.source, c.doc_hash, c.origin, c.metadata.get("tenant")) for c in chunks}


def test_documents_one_per_document(loaded: Loaded) -> None:
    docs = list(loaded.store.documents())
    assert len(docs) == 4
    assert set(docs) == expected_documents(loaded.chunks)


def test_count_total_and_filtered(loaded: Loaded) -> None:
    assert loaded.store.count() == 9
    assert loaded.store.count({"doc_id": doc_id(SERVE)}) == 3
    assert loaded.store.count({"doc_id": doc_id("https://nowhere.example/")}) == 0


def test_delete_document(loaded: Loaded) -> None:
    loaded.store.delete_document(doc_id(SERVE))
    assert loaded.store.count({"doc_id": doc_id(SERVE)}) == 0
    assert loaded.store.count() == 6
    assert doc_id(SERVE) not in {d.doc_id for d in loaded.store.documents()}
    assert all(h.chunk.source != SERVE for h in loaded.store.search(loaded.vectors[0], 9))


def test_delete_unknown_document_is_harmless(loaded: Loaded) -> None:
    loaded.store.delete_document(doc_id("https://nowhere.example/"))
    assert loaded.store.count() == len(loaded.chunks)


def test_replace_document_keeps_new_hash(loaded: Loaded) -> None:
    # Crash-safe replace: the new version is upserted first (both coexist), then the old one goes.
    new = make_chunks(SERVE, 2, doc_hash="h2", version="v2", kind="html", origin="https://docs.ray.io/")
    loaded.store.upsert(new, unit_vectors(2, seed=11))
    assert loaded.store.count({"doc_id": doc_id(SERVE)}) == 5
    hashes = sorted(d.doc_hash for d in loaded.store.documents() if d.doc_id == doc_id(SERVE))
    assert hashes == ["h1", "h2"]

    loaded.store.delete_document(doc_id(SERVE), keep_hash="h2")
    kept = dict(loaded.store.points({"doc_id": doc_id(SERVE)}))
    assert set(kept) == {c.id for c in new}
    assert {p["doc_hash"] for p in kept.values()} == {"h2"}
    assert set(loaded.store.documents()) == expected_documents(loaded.chunks[3:] + new)
    assert loaded.store.count() == 8


def test_keep_hash_spares_other_documents(loaded: Loaded) -> None:
    loaded.store.delete_document(doc_id(BATCHING), keep_hash="h1")  # current hash: nothing to delete
    assert loaded.store.count() == len(loaded.chunks)


# -- empty index ------------------------------------------------------------------------------------


def test_search_without_index_raises(store: VectorStore) -> None:
    with pytest.raises(EmptyIndexError, match="ragline ingest"):
        store.search(unit_vectors(1)[0], 3)


def test_search_on_empty_index_raises(store: VectorStore) -> None:
    store.open(INFO)
    with pytest.raises(EmptyIndexError, match="is empty"):
        store.search(unit_vectors(1)[0], 3)


def test_search_after_deleting_everything_raises(loaded: Loaded) -> None:
    for source in (SERVE, BATCHING, DATA, NOTES):
        loaded.store.delete_document(doc_id(source))
    assert loaded.store.count() == 0
    with pytest.raises(EmptyIndexError):
        loaded.store.search(loaded.vectors[0], 3)


def test_filtered_search_with_no_match_is_not_empty_index(loaded: Loaded) -> None:
    assert loaded.store.search(loaded.vectors[0], 3, filters={"kind": "pdf"}) == []


def test_flush_keeps_results(loaded: Loaded) -> None:
    before = [h.chunk.id for h in loaded.store.search(loaded.vectors[5], 9)]
    loaded.store.flush()
    assert [h.chunk.id for h in loaded.store.search(loaded.vectors[5], 9)] == before


# -- BM25 and hybrid search ------------------------------------------------------------------------
# Chunks with distinctive words: BM25 (computed by the store from embedding_text, IDF applied by the engine)
# must find words, and hybrid search must fuse the word ranking with the vector ranking.

TOPICS = [
    "Autoscaling adds replicas to a Serve deployment when requests queue up",
    "Batching groups Serve requests together to use the GPU better",
    "Datasets read Parquet files from cloud storage in parallel",
    "Actors keep state between method calls in Ray Core",
    "Placement groups reserve resources across nodes for gang scheduling",
    "Serve deployments scale with the number of replicas",
]


def topic_chunks(texts: list[str] = TOPICS, site: str = "https://x.io") -> list[Chunk]:
    """One single-chunk page per text, at ``site``/0, /1, ..."""
    return [
        Chunk(
            doc_id=doc_id(f"{site}/{i}"),
            source=f"{site}/{i}",
            title=f"Page {i}",
            section="",
            anchor=None,
            text=text,
            start=0,
            end=len(text),
            index=0,
            doc_hash="h",
        )
        for i, text in enumerate(texts)
    ]


@pytest.fixture
def topics(store: VectorStore) -> Loaded:
    chunks = topic_chunks()
    vectors = unit_vectors(len(chunks), seed=21)
    store.open(INFO)
    store.upsert(chunks, vectors)
    return Loaded(store, chunks, vectors)


def test_bm25_finds_the_words(topics: Loaded) -> None:
    hits = topics.store.search(None, 5, text="parquet files", mode="bm25")
    assert [h.chunk.id for h in hits] == [topics.chunks[2].id]  # only chunks sharing a term match
    assert hits[0].score > 0


def test_bm25_stems_and_weighs_rare_terms_higher(topics: Loaded) -> None:
    # "replica" matches "replicas" (stemmed) in two chunks; chunk 0 also has "queue"
    hits = topics.store.search(None, 5, text="replica queue", mode="bm25")
    assert [h.chunk.id for h in hits] == [topics.chunks[0].id, topics.chunks[5].id]


def test_bm25_with_only_stop_words_finds_nothing(topics: Loaded) -> None:
    assert topics.store.search(None, 3, text="the of and", mode="bm25") == []


def test_bm25_honours_filters(topics: Loaded) -> None:
    hits = topics.store.search(None, 5, text="serve", mode="bm25", filters={"source": "https://x.io/5"})
    assert [h.chunk.id for h in hits] == [topics.chunks[5].id]


def test_hybrid_fuses_vector_and_words(topics: Loaded) -> None:
    # The vector points at chunk 3, the words at chunk 2. Chunk 2 is first among the words and also in
    # the dense list (which holds every chunk), so it sums two shares; chunk 3 gets 1/k from the dense list.
    hits = topics.store.search(topics.vectors[3], 6, text="parquet", mode="hybrid")
    assert [h.chunk.id for h in hits[:2]] == [topics.chunks[2].id, topics.chunks[3].id]
    assert hits[1].score == pytest.approx(1 / 60, rel=1e-4)  # k=60
    assert 1 / 60 < hits[0].score < 2 / 60
    assert len(hits) == 6


@pytest.mark.parametrize(("weights", "first"), [((3.0, 1.0), 3), ((1.0, 3.0), 2)])
def test_hybrid_weights_decide(topics: Loaded, weights: tuple[float, float], first: int) -> None:
    # One candidate per list (dense: chunk 3, words: chunk 2): the heavier list wins.
    fusion = Fusion(dense_weight=weights[0], sparse_weight=weights[1], candidates=1)
    hits = topics.store.search(topics.vectors[3], 1, text="parquet", mode="hybrid", fusion=fusion)
    assert [h.chunk.id for h in hits] == [topics.chunks[first].id]


def test_hybrid_point_first_in_both_lists(topics: Loaded) -> None:
    hits = topics.store.search(topics.vectors[2], 3, text="parquet", mode="hybrid")
    assert hits[0].chunk.id == topics.chunks[2].id
    assert hits[0].score == pytest.approx(2 / 60, rel=1e-4)


def test_hybrid_filters_both_lists(topics: Loaded) -> None:
    only = {"source": ["https://x.io/0", "https://x.io/1"]}
    hits = topics.store.search(topics.vectors[3], 6, text="parquet serve", mode="hybrid", filters=only)
    assert {h.chunk.source for h in hits} == {"https://x.io/0", "https://x.io/1"}


def test_hybrid_threshold_bounds_the_dense_candidates(topics: Loaded) -> None:
    hits = topics.store.search(topics.vectors[3], 6, text="parquet", mode="hybrid", score_threshold=0.99)
    assert {h.chunk.id for h in hits} == {topics.chunks[3].id, topics.chunks[2].id}


def test_hybrid_of_stop_words_is_dense(topics: Loaded) -> None:
    hits = topics.store.search(topics.vectors[4], 2, text="the of", mode="hybrid")
    assert hits[0].chunk.id == topics.chunks[4].id


def test_bm25_follows_replacements(topics: Loaded) -> None:
    topics.store.delete_document(topics.chunks[2].doc_id)
    assert topics.store.search(None, 3, text="parquet", mode="bm25") == []


@pytest.mark.parametrize(
    ("vector", "text", "mode"),
    [(None, "x", "dense"), (None, "x", "hybrid"), ("v", None, "bm25"), ("v", " ", "hybrid"), ("v", "x", "magic")],
    ids=["dense-no-vector", "hybrid-no-vector", "bm25-no-text", "hybrid-blank-text", "unknown-mode"],
)
def test_search_mode_needs_its_inputs(topics: Loaded, vector: Any, text: str | None, mode: Any) -> None:
    v = topics.vectors[0] if vector == "v" else None
    with pytest.raises(BadRequestError):
        topics.store.search(v, 3, text=text, mode=mode)


@pytest.mark.persistent
def test_bm25_survives_reopen(topics: Loaded, backend: Backend, tmp_path: Path) -> None:
    again = reopen(backend, tmp_path, topics.store)
    try:
        hits = again.search(None, 3, text="placement groups", mode="bm25")
        assert hits[0].chunk.id == topics.chunks[4].id
    finally:
        again.close()


# -- an index built before BM25 ----------------------------------------------------------------------
# Every backend upgrades it when it is opened: the BM25 vectors are computed from the stored chunk texts,
# so BM25 and hybrid search answer exactly as on an index built with them (no re-embedding, no fallback).


def index_without_bm25(backend: Backend, folder: Path, chunks: list[Chunk], vectors: np.ndarray) -> VectorStore:
    """A store over an index as ragline wrote it before BM25: dense vectors, payloads and the IndexInfo."""
    from ragline.store.filters import DENSE, point_payload

    store = backend.make(folder)
    if isinstance(store, EdgeStore):
        import qdrant_edge as qe

        config = qe.EdgeConfig(vectors={DENSE: qe.EdgeVectorParams(size=DIM, distance=qe.Distance.Cosine)})
        shard = qe.EdgeShard.create(str(store.path / "shard"), config)
        points = [qe.Point(c.id, {DENSE: v.tolist()}, point_payload(c)) for c, v in zip(chunks, vectors, strict=True)]
        shard.update(qe.UpdateOperation.upsert_points(points))
        shard.close()
        (store.path / "index.json").write_text(json.dumps(INFO.to_json()))
    else:
        from qdrant_client import models

        assert isinstance(store, QdrantStore)
        client = store.engine.conn()
        dense = models.VectorParams(size=DIM, distance=models.Distance.COSINE)
        client.create_collection(store.collection, vectors_config={DENSE: dense}, metadata={"ragline": INFO.to_json()})
        structs = [
            models.PointStruct(id=c.id, vector={DENSE: v.tolist()}, payload=point_payload(c))
            for c, v in zip(chunks, vectors, strict=True)
        ]
        client.upsert(store.collection, points=structs)
    return store


def answers(store: VectorStore, vectors: np.ndarray) -> list[list[tuple[str, float]]]:
    """BM25 and hybrid results, with scores, for a few queries: what an upgraded index must reproduce."""
    queries = ["placement groups", "parquet files", "replica queue", "serve deployments"]
    return [
        [(h.chunk.id, round(h.score, 4)) for h in store.search(vectors[i], 6, text=text, mode=mode)]
        for i, text in enumerate(queries)
        for mode in ("bm25", "hybrid")
    ]


def test_index_without_bm25_is_upgraded_on_open(backend: Backend, tmp_path: Path) -> None:
    chunks, vectors = topic_chunks(), unit_vectors(len(TOPICS), seed=21)
    old = index_without_bm25(backend, tmp_path / "old", chunks, vectors)
    fresh = backend.make(tmp_path / "fresh")
    try:
        # Before open() the dense vectors answer, and the word modes say what is missing.
        assert old.search(vectors[1], 1)[0].chunk.id == chunks[1].id
        for mode in ("bm25", "hybrid"):
            with pytest.raises(StoreError, match="BM25"):
                old.search(vectors[1], 2, text="parquet", mode=mode)

        old.open(INFO)
        fresh.open(INFO)
        fresh.upsert(chunks, vectors)
        assert old.count() == len(chunks)
        assert answers(old, vectors) == answers(fresh, vectors)
        hits = old.search(vectors[1], 2, text="parquet", mode="hybrid")
        assert hits[0].score < 2 / 60  # fused ranks, not a cosine

        # Points written after the upgrade carry BM25 too.
        extra = Chunk.from_payload({**chunks[0].payload(), "doc_id": "new", "text": "Quokkas", "source": "q"})
        old.upsert([extra], unit_vectors(1, seed=5))
        assert [h.chunk.id for h in old.search(None, 3, text="quokkas", mode="bm25")] == [extra.id]
    finally:
        old.close()
        fresh.close()


@pytest.mark.persistent
def test_upgraded_index_keeps_bm25_after_reopen(backend: Backend, tmp_path: Path) -> None:
    chunks, vectors = topic_chunks(), unit_vectors(len(TOPICS), seed=21)
    old = index_without_bm25(backend, tmp_path, chunks, vectors)
    old.open(INFO)
    old.close()
    again = backend.make(tmp_path)
    try:
        assert again.search(None, 3, text="placement groups", mode="bm25")[0].chunk.id == chunks[4].id
        again.open(INFO)  # nothing left to upgrade
        assert again.count() == len(chunks)
    finally:
        again.close()


# -- helpers and factory (backend-independent) ------------------------------------------------------


def test_source_prefixes_of_url() -> None:
    assert source_prefixes(SERVE) == [
        "https://docs.ray.io/",
        "https://docs.ray.io/en/",
        "https://docs.ray.io/en/master/",
        "https://docs.ray.io/en/master/serve/",
        SERVE,
    ]


def test_source_prefixes_of_paths() -> None:
    assert source_prefixes("/home/u/a.md") == ["/", "/home/", "/home/u/", "/home/u/a.md"]
    assert source_prefixes("docs/a.md") == ["docs/", "docs/a.md"]
    assert source_prefixes("https://x.io/docs/") == ["https://x.io/", "https://x.io/docs/"]
    assert source_prefixes("README") == ["README"]


def test_conditions_of_prefix() -> None:
    [m] = conditions({"source": Prefix("https://x.io/a")})
    assert (m.key, m.values) == ("source_prefixes", ("https://x.io/a", "https://x.io/a/"))
    [m] = conditions({"source": Prefix("https://x.io/a/")})
    assert m.values == ("https://x.io/a/",)


def test_make_store_picks_backend(tmp_path: Path) -> None:
    edge = make_store(QdrantSettings(), tmp_path)  # the embedded engine, following the published generation
    assert isinstance(edge, FollowingStore) and edge.generations.published_path() == tmp_path / "index"
    local = make_store(QdrantSettings(path=str(tmp_path / "q"), collection="c"), tmp_path)
    assert isinstance(local, QdrantStore) and local.path == str(tmp_path / "q") and local.collection == "c"
    remote = make_store(QdrantSettings(url="http://qdrant:6333", api_key="k"), tmp_path)
    assert isinstance(remote, QdrantStore) and remote.url == "http://qdrant:6333" and remote.api_key == "k"


def test_unreachable_server_raises_store_error() -> None:
    port = free_port()  # nothing listens there
    url = f"http://127.0.0.1:{port}"
    store = QdrantStore(url=url, timeout=2)
    with pytest.raises(StoreError, match=url.replace(".", r"\.")):
        store.open(INFO)
    with pytest.raises(StoreError, match="cannot reach"):
        store.search(unit_vectors(1)[0], 3)
    store.close()


def test_edge_index_file_is_plain_json(tmp_path: Path) -> None:
    with EdgeStore(tmp_path / "index") as store:
        store.open(INFO)
    assert (tmp_path / "index" / "index.json").read_text() == '{"model": "test/model-a", "dimension": 8}'
    assert not [p for p in (tmp_path / "index").iterdir() if p.name.startswith(".index-")]  # no temp left


def test_edge_without_index_file_checks_the_shard(tmp_path: Path) -> None:
    # A crash between creating the shard and writing index.json: the engine still checks the dimension.
    with EdgeStore(tmp_path / "index") as store:
        store.open(INFO)
        store.upsert(make_chunks(SERVE, 2), unit_vectors(2))
    (tmp_path / "index" / "index.json").unlink()
    with EdgeStore(tmp_path / "index") as store, pytest.raises(IndexMismatchError):
        store.open(IndexInfo(INFO.model, 16))
    with EdgeStore(tmp_path / "index") as store:
        store.open(INFO)
        assert store.count() == 2
    assert EdgeStore(tmp_path / "index").info() == INFO


@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
def test_tied_points_come_in_chunk_id_order_and_the_cut_keeps_the_first_ids(store: VectorStore, mode: str) -> None:
    # Twelve copies of one text and vector: every dense and BM25 score ties. Engines return ties in any order
    # (the embedded engine's in a new order from one call to the next), and a fused score depends on each
    # list's ranks: the store ranks ties by chunk id, so a question gets the same hits in every process.
    chunks = topic_chunks(["Placement groups reserve resources across nodes"] * 12, "https://t.io")
    vector = unit_vectors(1, seed=3)[0]
    store.open(INFO)
    store.upsert(chunks, np.stack([vector] * len(chunks)))
    ids = sorted(c.id for c in chunks)
    for _ in range(3):
        hits = store.search(vector, 5, text="placement groups", mode=mode)  # type: ignore[arg-type]
        assert [h.chunk.id for h in hits] == ids[:5]
    if mode == "hybrid":  # the n-th of both lists: 2 / (n + 59)
        assert [h.score for h in hits] == pytest.approx([2 / (n + 59) for n in range(1, 6)], rel=1e-6)
