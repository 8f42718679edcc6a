"""Qdrant through qdrant-client as a VectorStore: a Qdrant server (``url``) or qdrant-client's local mode.

Local mode (``path`` on disk, or in memory) is brute force in pure Python, but it speaks the server's API,
so it stands in for a server in tests. The IndexInfo lives in the collection's metadata (key ``ragline``),
so it travels with the collection, in snapshots too.

Points hold a dense vector and a BM25 sparse vector (``bm25``, with the IDF modifier, so the server weighs
terms by the collection's statistics); hybrid search fuses both with reciprocal rank fusion on the server.
A collection created before BM25 existed keeps working: hybrid search falls back to dense with a warning.
"""

from __future__ import annotations

import json
import logging
import math
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from ragline.errors import EmptyIndexError, IndexMismatchError, StoreError
from ragline.records import Chunk, Hit
from ragline.store.base import Filters, Fusion, IndexInfo, SearchMode, StoredDocument
from ragline.store.filters import (
    DENSE,
    DOCUMENT_FIELDS,
    FIRST_CHUNKS,
    INTEGER_FIELDS,
    KEYWORD_FIELDS,
    Match,
    as_matrix,
    as_query,
    check_info,
    check_search,
    conditions,
    empty_index,
    fusion_plan,
    info_from_json,
    point_payload,
    required_conditions,
    stale_points,
    stored_document,
)
from ragline.store.sparse import SPARSE, SparseVector, document_vector, query_vector, sparse_text

log = logging.getLogger(__name__)

INFO_KEY = "ragline"  # the collection-metadata key holding the IndexInfo
_UPSERT_BATCH = 256
# int8 candidates are rescored with the original vectors, so scores and thresholds mean the same with or
# without quantisation (ignored by a collection without it).
_RESCORE = models.SearchParams(quantization=models.QuantizationSearchParams(rescore=True))
# What snapshot() writes: the collection's identity, and either the server's snapshot or every point.
COLLECTION_FILE = "collection.json"
SNAPSHOT_FILE = "collection.snapshot"
POINTS_FILE = "points.jsonl"
_SCROLL_PAGE = 512


class QdrantStore:
    """A VectorStore on one Qdrant collection; the client connects on first use."""

    def __init__(
        self,
        url: str | None = None,
        api_key: str | None = None,
        path: str | None = None,
        collection: str = "ragline",
        timeout: float = 30.0,
        *,
        quantization: str = "none",
        on_disk_vectors: bool = False,
        on_disk_payload: bool = True,
    ) -> None:
        self.url = url
        # How a new collection lays out its data (QdrantSettings); an existing one keeps its own.
        self.quantization = quantization
        self.on_disk_vectors = on_disk_vectors
        self.on_disk_payload = on_disk_payload
        self.api_key = api_key
        self.path = path
        self.collection = collection
        self.timeout = timeout
        self._client: QdrantClient | None = None
        self._info: IndexInfo | None = None  # set by open(): writes need it
        self._exists = False  # the collection is known to exist (never cached as False)
        self._bm25: bool | None = None  # does the collection have the BM25 vector? (asked once)

    def __enter__(self) -> QdrantStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def where(self) -> str:
        """Where the index lives, for messages."""
        return f"{self.url or self.path or ':memory:'} (collection {self.collection!r})"

    # -- lifecycle -------------------------------------------------------------------------------

    def open(self, info: IndexInfo, *, recreate: bool = False) -> None:
        """Create the collection, or check the existing one was built with ``info``."""
        with self._errors():
            self._bm25 = None
            client = self._conn()
            if recreate and client.collection_exists(self.collection):
                client.delete_collection(self.collection)
                log.info("deleted the collection %s", self.where)
            if client.collection_exists(self.collection):
                self._check_existing(client, info)
            else:
                log.info("creating the collection %s (%s, %d dimensions)", self.where, info.model, info.dimension)
                client.create_collection(
                    self.collection,
                    vectors_config={DENSE: self._dense_params(info)},
                    sparse_vectors_config={
                        SPARSE: models.SparseVectorParams(
                            modifier=models.Modifier.IDF,
                            index=models.SparseIndexParams(on_disk=True) if self.on_disk_vectors else None,
                        )
                    },
                    on_disk_payload=self.on_disk_payload,
                    metadata={INFO_KEY: info.to_json()},
                )
            self._ensure_indexes(client)
        self._info = info
        self._exists = True

    def info(self) -> IndexInfo | None:
        """The IndexInfo in the collection's metadata, or None when there is no collection yet."""
        if self._info is not None:
            return self._info
        with self._errors():
            client = self._conn()
            if not client.collection_exists(self.collection):
                return None
            return self._stored_info(client)

    def flush(self) -> None:
        """Nothing to do: writes wait for the server to apply them, and local mode persists each one."""

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        self._exists = False
        self._bm25 = None
        self._info = None  # an in-memory collection is gone; others are re-read on the next open()

    # -- writes ----------------------------------------------------------------------------------

    def upsert(self, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        """Insert or replace points (ids are ``chunk.id``, so repeating an upsert changes nothing)."""
        if not chunks:
            return
        if self._info is None:
            raise StoreError(f"the index at {self.where} is not open: call open() before writing")
        matrix = as_matrix(chunks, vectors, self._info.dimension)
        with self._errors():
            client = self._conn()
            for start in range(0, len(chunks), _UPSERT_BATCH):
                batch = zip(
                    chunks[start : start + _UPSERT_BATCH],
                    matrix[start : start + _UPSERT_BATCH].tolist(),
                    strict=True,
                )
                sparse = self._has_sparse(client)
                points = [
                    models.PointStruct(id=chunk.id, vector=_vectors(chunk, row, sparse), payload=point_payload(chunk))
                    for chunk, row in batch
                ]
                client.upsert(self.collection, points=points, wait=True)

    def delete_document(self, doc_id: str, *, keep_hash: str | None = None) -> None:
        """Delete a document's points, except those whose doc_hash equals ``keep_hash``."""
        with self._errors():
            if not self._ready():
                return
            must, must_not = stale_points(doc_id, keep_hash)
            selector = models.FilterSelector(filter=_filter(must, must_not))
            self._conn().delete(self.collection, points_selector=selector, wait=True)

    def delete(self, filters: Filters) -> int:
        """Delete every point matching ``filters``; returns how many (both vectors go with each point)."""
        where = _filter(required_conditions(filters))
        with self._errors():
            if not self._ready():
                return 0
            client = self._conn()
            n = client.count(self.collection, count_filter=where, exact=True).count
            if n:
                client.delete(self.collection, points_selector=models.FilterSelector(filter=where), wait=True)
        return n

    # -- snapshots -------------------------------------------------------------------------------

    def snapshot(self, target: Path) -> None:
        """A server takes its own snapshot of the collection, downloaded into ``target``; local mode (which
        has no snapshots) exports every point with its vectors and payload."""
        with self._errors():
            info = self.info()
            if info is None or not self._ready():
                raise EmptyIndexError(f"no collection {self.where} to snapshot: run `ragline ingest` first")
            client = self._conn()
            target.mkdir(parents=True)
            meta: dict[str, Any] = {"collection": self.collection, "info": info.to_json()}
            if self.url:
                description = client.create_snapshot(self.collection, wait=True)
                if description is None:
                    raise StoreError(f"Qdrant at {self.url} did not create a snapshot of {self.collection!r}")
                meta["server_snapshot"] = description.name
                self._download(description.name, target / SNAPSHOT_FILE)
            else:
                meta["points"] = self._export(client, target / POINTS_FILE)
            (target / COLLECTION_FILE).write_text(json.dumps(meta), encoding="utf-8")

    def restore(self, source: Path) -> None:
        """Replace the collection with the one saved in ``source`` (uploaded to a server, re-imported locally)."""
        try:
            meta = json.loads((source / COLLECTION_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise StoreError(f"{source} holds no collection snapshot: {e}") from e
        info = info_from_json(meta.get("info"))
        if info is None:
            raise StoreError(f"{source / COLLECTION_FILE} names no embedding model")
        with self._errors():
            if self.url:
                self._upload(source / SNAPSHOT_FILE)
                self._exists, self._bm25, self._info = False, None, None
            else:
                self.open(info, recreate=True)
                self._import(self._conn(), source / POINTS_FILE)
        log.info("restored the collection %s from %s", self.where, source)

    def _download(self, name: str, path: Path) -> None:
        url = f"{self.url}/collections/{self.collection}/snapshots/{name}"
        with (
            httpx.stream("GET", url, headers=self._headers(), timeout=self.timeout) as response,
            path.open("wb") as f,
        ):
            response.raise_for_status()
            for block in response.iter_bytes():
                f.write(block)

    def _upload(self, path: Path) -> None:
        url = f"{self.url}/collections/{self.collection}/snapshots/upload"
        with path.open("rb") as f:
            response = httpx.post(
                url,
                params={"priority": "snapshot", "wait": "true"},
                files={"snapshot": (path.name, f, "application/octet-stream")},
                headers=self._headers(),
                timeout=max(self.timeout, 600.0),
            )
        response.raise_for_status()

    def _headers(self) -> dict[str, str]:
        return {"api-key": self.api_key} if self.api_key else {}

    def _export(self, client: QdrantClient, path: Path) -> int:
        n = 0
        offset: Any = None
        with path.open("w", encoding="utf-8") as f:
            while True:
                records, offset = client.scroll(
                    self.collection, limit=_SCROLL_PAGE, offset=offset, with_payload=True, with_vectors=True
                )
                for r in records:
                    vectors = r.vector if isinstance(r.vector, dict) else {}
                    sparse = vectors.get(SPARSE)
                    line = {
                        "id": r.id,
                        DENSE: vectors.get(DENSE),
                        SPARSE: {"indices": sparse.indices, "values": sparse.values}
                        if isinstance(sparse, models.SparseVector)
                        else None,
                        "payload": r.payload or {},
                    }
                    f.write(json.dumps(line) + "\n")
                    n += 1
                if offset is None:
                    return n

    def _import(self, client: QdrantClient, path: Path) -> None:
        batch: list[models.PointStruct] = []
        with path.open(encoding="utf-8") as f:
            for line in f:
                p = json.loads(line)
                sparse = p.get(SPARSE)
                vector = (
                    models.SparseVector(**sparse)
                    if sparse
                    else _sparse(document_vector(sparse_text(Chunk.from_payload(p["payload"]))))
                )
                batch.append(
                    models.PointStruct(id=p["id"], vector={DENSE: p[DENSE], SPARSE: vector}, payload=p["payload"])
                )
                if len(batch) >= _UPSERT_BATCH:
                    client.upsert(self.collection, points=batch, wait=True)
                    batch = []
        if batch:
            client.upsert(self.collection, points=batch, wait=True)

    # -- reads -----------------------------------------------------------------------------------

    def search(
        self,
        vector: np.ndarray | None,
        k: int,
        *,
        filters: Filters | None = None,
        score_threshold: float | None = None,
        text: str | None = None,
        mode: SearchMode = "dense",
        fusion: Fusion | None = None,
    ) -> list[Hit]:
        """Top-k points, best first: cosine (dense), BM25 (bm25) or both fused by RRF (hybrid)."""
        check_search(vector, text, k, mode)
        dense = as_query(vector, self._info.dimension if self._info else None) if vector is not None else None
        query_filter = _maybe_filter(conditions(filters))
        with self._errors():
            if not self._ready():
                raise empty_index(self.where)
            client = self._conn()
            if mode != "dense" and not self._has_sparse(client):
                if mode == "bm25":
                    raise StoreError(f"the collection {self.where} has no BM25 vectors: re-ingest with --recreate")
                log.warning("the collection %s has no BM25 vectors: hybrid search runs dense only", self.where)
                mode = "dense"
            sparse = query_vector(text or "") if mode != "dense" else SparseVector([], [])
            points = self._query(client, mode, dense, sparse, k, query_filter, score_threshold, fusion)
            if not points and client.count(self.collection, exact=True).count == 0:
                raise empty_index(self.where)
        return [Hit(Chunk.from_payload(p.payload or {}), float(p.score)) for p in points]

    def _query(
        self,
        client: QdrantClient,
        mode: SearchMode,
        dense: list[float] | None,
        sparse: SparseVector,
        k: int,
        query_filter: models.Filter | None,
        score_threshold: float | None,
        fusion: Fusion | None,
    ) -> list[models.ScoredPoint]:
        common: dict[str, Any] = {"limit": k, "with_payload": True}
        if mode == "dense":
            response = client.query_points(
                self.collection,
                query=dense,
                using=DENSE,
                query_filter=query_filter,
                score_threshold=score_threshold,
                search_params=_RESCORE,
                **common,
            )
        elif mode == "bm25":
            if not sparse:  # only stop words: nothing can match
                return []
            response = client.query_points(
                self.collection,
                query=_sparse(sparse),
                using=SPARSE,
                query_filter=query_filter,
                score_threshold=score_threshold,
                **common,
            )
        else:
            f, n = fusion_plan(k, fusion)
            prefetch = [
                models.Prefetch(
                    query=dense,
                    using=DENSE,
                    filter=query_filter,
                    limit=n,
                    score_threshold=score_threshold,
                    params=_RESCORE,
                )
            ]
            weights = [f.dense_weight]
            if sparse:
                prefetch.append(models.Prefetch(query=_sparse(sparse), using=SPARSE, filter=query_filter, limit=n))
                weights.append(f.sparse_weight)
            response = client.query_points(
                self.collection,
                prefetch=prefetch,
                query=models.RrfQuery(rrf=models.Rrf(k=f.k, weights=weights)),
                **common,
            )
        return list(response.points)

    def documents(self) -> Iterator[StoredDocument]:
        """One entry per (doc_id, doc_hash), read from first chunks only."""
        seen: set[tuple[str, str]] = set()
        for _, payload in self._scroll([FIRST_CHUNKS], list(DOCUMENT_FIELDS)):
            doc = stored_document(payload)
            if (doc.doc_id, doc.doc_hash) not in seen:
                seen.add((doc.doc_id, doc.doc_hash))
                yield doc

    def count(self, filters: Filters | None = None) -> int:
        count_filter = _maybe_filter(conditions(filters))
        with self._errors():
            if not self._ready():
                return 0
            return self._conn().count(self.collection, count_filter=count_filter, exact=True).count

    def points(self, filters: Filters | None = None) -> Iterator[tuple[str, dict[str, Any]]]:
        yield from self._scroll(conditions(filters), True)

    # -- internals -------------------------------------------------------------------------------

    def _scroll(self, must: list[Match], with_payload: bool | list[str]) -> Iterator[tuple[str, dict[str, Any]]]:
        scroll_filter = _maybe_filter(must)
        with self._errors():
            if not self._ready():
                return
            offset: Any = None
            while True:
                records, offset = self._conn().scroll(
                    self.collection,
                    scroll_filter=scroll_filter,
                    limit=_SCROLL_PAGE,
                    offset=offset,
                    with_payload=with_payload,
                    with_vectors=False,
                )
                for record in records:
                    yield str(record.id), dict(record.payload or {})
                if offset is None:
                    return

    def _dense_params(self, info: IndexInfo) -> models.VectorParams:
        """The dense vector of a new collection, with the memory layout asked for."""
        quantized = (
            models.ScalarQuantization(
                scalar=models.ScalarQuantizationConfig(type=models.ScalarType.INT8, quantile=0.99, always_ram=True)
            )
            if self.quantization == "int8"
            else None
        )
        return models.VectorParams(
            size=info.dimension,
            distance=models.Distance.COSINE,
            on_disk=self.on_disk_vectors or None,
            quantization_config=quantized,
        )

    def _conn(self) -> QdrantClient:
        if self._client is None:
            if self.url:
                # The version check would cost a request (and a warning) on every start; the first real
                # call reports an unreachable server anyway.
                self._client = QdrantClient(
                    url=self.url,
                    api_key=self.api_key,
                    timeout=math.ceil(self.timeout),
                    check_compatibility=False,
                )
            else:
                try:
                    self._client = QdrantClient(path=self.path) if self.path else QdrantClient(":memory:")
                except RuntimeError as e:  # the folder is locked by another client
                    raise StoreError(f"cannot open {self.where}: {e}") from e
        return self._client

    def _has_sparse(self, client: QdrantClient) -> bool:
        """Does the collection hold BM25 vectors? (A collection made before them does not.)"""
        if self._bm25 is None:
            sparse = client.get_collection(self.collection).config.params.sparse_vectors or {}
            self._bm25 = SPARSE in sparse
        return self._bm25

    def _ready(self) -> bool:
        """Does the collection exist? Asked until it does, then remembered."""
        if not self._exists:
            self._exists = self._conn().collection_exists(self.collection)
        return self._exists

    def _stored_info(self, client: QdrantClient) -> IndexInfo | None:
        metadata = client.get_collection(self.collection).config.metadata or {}
        return info_from_json(metadata.get(INFO_KEY))

    def _check_existing(self, client: QdrantClient, info: IndexInfo) -> None:
        stored = self._stored_info(client)
        if stored is not None:
            check_info(stored, info, self.where)
            return
        # A collection made outside ragline: adopt it if its dense vector fits, and record the info.
        vectors = client.get_collection(self.collection).config.params.vectors
        params = vectors.get(DENSE) if isinstance(vectors, dict) else None
        if params is None or params.size != info.dimension:
            raise IndexMismatchError(
                f"the collection {self.where} has no {info.dimension}-dimension vector named {DENSE!r}: "
                "re-ingest with --recreate or choose another collection"
            )
        client.update_collection(self.collection, metadata={INFO_KEY: info.to_json()})

    def _ensure_indexes(self, client: QdrantClient) -> None:
        """Create the payload indexes filters and documents() rely on (local mode ignores them)."""
        existing = client.get_collection(self.collection).payload_schema
        wanted = [(f, models.PayloadSchemaType.KEYWORD) for f in KEYWORD_FIELDS]
        wanted += [(f, models.PayloadSchemaType.INTEGER) for f in INTEGER_FIELDS]
        with warnings.catch_warnings():
            # Local mode warns that payload indexes have no effect there: known and harmless.
            warnings.filterwarnings("ignore", message="Payload indexes have no effect")
            for field, schema in wanted:
                if field not in existing:
                    client.create_payload_index(self.collection, field, field_schema=schema, wait=True)

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Turn transport and server errors into StoreError naming the server."""
        try:
            yield
        except ResponseHandlingException as e:
            raise StoreError(f"cannot reach Qdrant at {self.url}: {e.source}") from e
        except UnexpectedResponse as e:
            detail = e.content.decode("utf-8", "replace")[:300]
            raise StoreError(f"Qdrant at {self.url} answered {e.status_code} {e.reason_phrase}: {detail}") from e
        except httpx.HTTPError as e:
            raise StoreError(f"cannot reach Qdrant at {self.url}: {e}") from e


def _sparse(v: SparseVector) -> models.SparseVector:
    return models.SparseVector(indices=v.indices, values=v.values)


def _vectors(chunk: Chunk, dense: list[float], sparse: bool) -> dict[str, Any]:
    if not sparse:
        return {DENSE: dense}
    return {DENSE: dense, SPARSE: _sparse(document_vector(sparse_text(chunk)))}


def _maybe_filter(must: Sequence[Match]) -> models.Filter | None:
    return _filter(must) if must else None


def _filter(must: Sequence[Match], must_not: Sequence[Match] = ()) -> models.Filter:
    return models.Filter(
        must=[_condition(m) for m in must] or None,
        must_not=[_condition(m) for m in must_not] or None,
    )


def _condition(m: Match) -> models.FieldCondition:
    if len(m.values) == 1:
        return models.FieldCondition(key=m.key, match=models.MatchValue(value=m.values[0]))
    return models.FieldCondition(key=m.key, match=models.MatchAny(any=list(m.values)))  # type: ignore[arg-type]
