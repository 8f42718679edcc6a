"""Qdrant through qdrant-client as a VectorStore: a Qdrant server (``url``) or qdrant-client's local mode.

Local mode (``path`` on disk, or in memory) is brute force in pure Python, but it speaks the server's API,
so it stands in for a server in tests. The IndexInfo lives in the collection's metadata (key ``ragline``),
so it travels with the collection, in snapshots too.

Points hold a dense vector and a BM25 sparse vector (``bm25``, with the IDF modifier, so the server weighs
terms by the collection's statistics); hybrid search fuses both with reciprocal rank fusion on the server.
Everything but the client calls is shared with the other backend (:mod:`ragline.store.facade`).
"""

from __future__ import annotations

import json
import logging
import math
import warnings
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from ragline.errors import IndexMismatchError, StoreError
from ragline.store.base import IndexInfo
from ragline.store.facade import EngineStore, Layout, Page, Point
from ragline.store.filters import DENSE, FilterBuilder, Match, Scalar, info_from_json
from ragline.store.plan import Found, Leg, SearchPlan
from ragline.store.shared import SharedClients
from ragline.store.snapshots import download_snapshot, export_points, import_points, saved_info, upload_snapshot
from ragline.store.sparse import SPARSE, SparseVector

log = logging.getLogger(__name__)

INFO_KEY = "ragline"  # the collection-metadata key holding the IndexInfo
# int8 candidates are rescored with the original vectors, so scores and thresholds mean the same with or
# without quantisation (ignored by a collection without it).
_RESCORE = models.SearchParams(quantization=models.QuantizationSearchParams(rescore=True))
# What snapshot() writes: the collection's identity, and either the server's snapshot or every point.
COLLECTION_FILE = "collection.json"
SNAPSHOT_FILE = "collection.snapshot"
POINTS_FILE = "points.jsonl"


class QdrantStore(EngineStore["QdrantEngine"]):
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
        super().__init__(
            QdrantEngine(
                url, api_key, path, collection, timeout, Layout(quantization, on_disk_vectors, on_disk_payload)
            )
        )

    @property
    def url(self) -> str | None:
        return self.engine.url

    @property
    def api_key(self) -> str | None:
        return self.engine.api_key

    @property
    def path(self) -> str | None:
        return self.engine.path

    @property
    def collection(self) -> str:
        return self.engine.collection


class QdrantEngine:
    """One collection on a Qdrant server or in qdrant-client's local mode."""

    batch_size = 256

    def __init__(
        self,
        url: str | None,
        api_key: str | None,
        path: str | None,
        collection: str,
        timeout: float,
        layout: Layout,
    ) -> None:
        self.url, self.api_key, self.path = url, api_key, path
        self.collection = collection
        self.timeout = timeout
        self.layout = layout
        self._client: QdrantClient | None = None
        self._exists = False  # the collection is known to exist (never cached as False)

    @property
    def where(self) -> str:
        return f"{self.url or self.path or ':memory:'} (collection {self.collection!r})"

    @contextmanager
    def guard(self) -> Iterator[None]:
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

    def conn(self) -> QdrantClient:
        """The client, connected on first use."""
        if self._client is None:
            if self.url:
                # The version check would cost a request (and a warning) on every start; the first real
                # call reports an unreachable server anyway.
                self._client = QdrantClient(
                    url=self.url, api_key=self.api_key, timeout=math.ceil(self.timeout), check_compatibility=False
                )
            else:
                try:
                    self._client = _local(self.path) if self.path else QdrantClient(":memory:")
                except RuntimeError as e:  # the folder is locked by another client
                    raise StoreError(f"cannot open {self.where}: {e}") from e
        return self._client

    # -- lifecycle -------------------------------------------------------------------------------

    def stored_info(self) -> IndexInfo | None:
        if not self.exists():
            return None
        metadata = self._config().metadata or {}
        return info_from_json(metadata.get(INFO_KEY))

    def exists(self) -> bool:
        """Does the collection exist? Asked until it does, then remembered."""
        if not self._exists:
            self._exists = self.conn().collection_exists(self.collection)
        return self._exists

    def open(self, info: IndexInfo, *, recorded: bool) -> None:
        if not self.exists():
            log.info("creating the collection %s (%s, %d dimensions)", self.where, info.model, info.dimension)
            self.conn().create_collection(
                self.collection,
                vectors_config={DENSE: self._dense_params(info)},
                sparse_vectors_config={SPARSE: self._sparse_params()},
                on_disk_payload=self.layout.on_disk_payload,
                metadata={INFO_KEY: info.to_json()},
            )
            self._exists = True
        elif not recorded:
            # A collection made outside ragline: adopt it if its dense vector fits, and record the info.
            vectors = self._config().params.vectors
            params = vectors.get(DENSE) if isinstance(vectors, dict) else None
            if params is None or params.size != info.dimension:
                raise IndexMismatchError(
                    f"the collection {self.where} has no {info.dimension}-dimension vector named {DENSE!r}: "
                    "re-ingest with --recreate or choose another collection"
                )
            self.conn().update_collection(self.collection, metadata={INFO_KEY: info.to_json()})

    def wipe(self) -> None:
        if self.exists():
            self.conn().delete_collection(self.collection)
        self._exists = False

    def flush(self) -> None:
        """Nothing to do: writes wait for the server to apply them, and local mode persists each one."""

    def close(self) -> None:
        if self._client is not None:
            client = _LOCAL.release(self.path) if self.path and not self.url else self._client
            if client is not None:
                client.close()
            self._client = None
        self._exists = False

    # -- payload indexes and the BM25 vector -----------------------------------------------------

    def payload_indexes(self) -> Collection[str]:
        return set(self.conn().get_collection(self.collection).payload_schema)

    def create_payload_index(self, field: str, *, integer: bool) -> None:
        schema = models.PayloadSchemaType.INTEGER if integer else models.PayloadSchemaType.KEYWORD
        with warnings.catch_warnings():
            # Local mode warns that payload indexes have no effect there: known and harmless.
            warnings.filterwarnings("ignore", message="Payload indexes have no effect")
            self.conn().create_payload_index(self.collection, field, field_schema=schema, wait=True)

    def has_sparse(self) -> bool:
        return SPARSE in (self._config().params.sparse_vectors or {})

    def add_sparse(self) -> None:
        # The index layout of a sparse vector cannot be chosen here: it is the server's default.
        config = models.SparseVectorNameConfig(sparse=models.SparseVectorConfig(modifier=models.Modifier.IDF))
        self.conn().create_vector_name(self.collection, SPARSE, config, wait=True)

    def set_sparse(self, vectors: Sequence[tuple[str, SparseVector]]) -> None:
        points = [models.PointVectors(id=pid, vector={SPARSE: _sparse(v)}) for pid, v in vectors]
        self.conn().update_vectors(self.collection, points=points, wait=True)

    # -- points ----------------------------------------------------------------------------------

    def upsert(self, points: Sequence[Point]) -> None:
        structs = [
            models.PointStruct(id=p.id, vector={DENSE: p.dense, SPARSE: _sparse(p.sparse)}, payload=p.payload)
            for p in points
        ]
        self.conn().upsert(self.collection, points=structs, wait=True)

    def delete(self, must: Sequence[Match], must_not: Sequence[Match] = ()) -> None:
        selector = models.FilterSelector(filter=_FILTERS.build(must, must_not))
        self.conn().delete(self.collection, points_selector=selector, wait=True)

    def count(self, must: Sequence[Match]) -> int:
        return self.conn().count(self.collection, count_filter=_FILTERS.optional(must), exact=True).count

    def scroll(self, must: Sequence[Match], with_payload: bool | list[str], offset: Any, limit: int) -> Page:
        records, offset = self.conn().scroll(
            self.collection,
            scroll_filter=_FILTERS.optional(must),
            limit=limit,
            offset=offset,
            with_payload=with_payload,
        )
        return [(str(r.id), dict(r.payload or {})) for r in records], offset

    def query(self, plan: SearchPlan, *, payload: bool = True) -> Found:
        [leg] = plan.legs  # fused plans are fused by the store (ragline.store.plan.fuse)
        response = self.conn().query_points(
            self.collection,
            query=_vector(leg),
            using=leg.using,
            query_filter=_FILTERS.optional(plan.where),
            score_threshold=leg.score_threshold,
            search_params=_RESCORE if leg.dense else None,
            limit=leg.limit,
            with_payload=payload,
        )
        return [(str(p.id), dict(p.payload or {}), float(p.score)) for p in response.points]

    def payloads(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        records = self.conn().retrieve(self.collection, list(ids), with_payload=True, with_vectors=False)
        return {str(r.id): dict(r.payload or {}) for r in records}

    # -- snapshots -------------------------------------------------------------------------------

    def snapshot(self, target: Path, info: IndexInfo) -> None:
        """A server takes its own snapshot of the collection, downloaded into ``target``; local mode (which
        has no snapshots) exports every point with its vectors and payload."""
        target.mkdir(parents=True)
        meta: dict[str, Any] = {"collection": self.collection, "info": info.to_json()}
        if self.url:
            description = self.conn().create_snapshot(self.collection, wait=True)
            if description is None:
                raise StoreError(f"Qdrant at {self.url} did not create a snapshot of {self.collection!r}")
            meta["server_snapshot"] = description.name
            url = f"{self.url}/collections/{self.collection}/snapshots/{description.name}"
            download_snapshot(url, target / SNAPSHOT_FILE, api_key=self.api_key, timeout=self.timeout)
        else:
            meta["points"] = export_points(self.conn(), self.collection, target / POINTS_FILE)
        (target / COLLECTION_FILE).write_text(json.dumps(meta), encoding="utf-8")

    def restore(self, source: Path, check: Callable[[QdrantEngine], None]) -> None:
        """Replace the collection with the one saved in ``source``, once a copy of it, loaded into a staging
        collection beside it (uploaded to a server, re-imported locally), passed ``check``."""
        info = saved_info(source / COLLECTION_FILE)
        staged = QdrantEngine(
            self.url, self.api_key, self.path, f"{self.collection}_restoring", self.timeout, self.layout
        )
        staged._client = self.conn()  # local mode allows one client per folder: the stage shares this one
        staged.wipe()
        try:
            staged._load(source, info)
            check(staged)
        finally:
            staged.wipe()
        self._load(source, info)  # the checked copy; the collection is replaced only now

    def _load(self, source: Path, info: IndexInfo) -> None:
        if self.url:
            url = f"{self.url}/collections/{self.collection}/snapshots/upload"
            upload_snapshot(url, source / SNAPSHOT_FILE, api_key=self.api_key, timeout=self.timeout)
            self._exists = False
        else:
            self.wipe()
            self.open(info, recorded=False)
            import_points(self.conn(), self.collection, source / POINTS_FILE, self.batch_size)

    # -- internals -------------------------------------------------------------------------------

    def _config(self) -> models.CollectionConfig:
        return self.conn().get_collection(self.collection).config

    def _dense_params(self, info: IndexInfo) -> models.VectorParams:
        """The dense vector of a new collection, with the memory layout asked for."""
        quantized = (
            models.ScalarQuantization(
                scalar=models.ScalarQuantizationConfig(type=models.ScalarType.INT8, quantile=0.99, always_ram=True)
            )
            if self.layout.quantization == "int8"
            else None
        )
        return models.VectorParams(
            size=info.dimension,
            distance=models.Distance.COSINE,
            on_disk=self.layout.on_disk_vectors or None,
            quantization_config=quantized,
        )

    def _sparse_params(self) -> models.SparseVectorParams:
        index = models.SparseIndexParams(on_disk=True) if self.layout.on_disk_vectors else None
        return models.SparseVectorParams(modifier=models.Modifier.IDF, index=index)


_LOCAL: SharedClients[QdrantClient] = SharedClients()


def _local(path: str) -> QdrantClient:
    """The local-mode client of ``path``, shared by the stores of this process (one client per folder)."""
    return _LOCAL.acquire(path, lambda: QdrantClient(path=path))


def _vector(leg: Leg) -> list[float] | models.SparseVector:
    return _sparse(leg.vector) if isinstance(leg.vector, SparseVector) else leg.vector


def _sparse(v: SparseVector) -> models.SparseVector:
    return models.SparseVector(indices=v.indices, values=v.values)


def _value(key: str, value: Scalar) -> models.FieldCondition:
    return models.FieldCondition(key=key, match=models.MatchValue(value=value))


def _any_of(key: str, values: list[Scalar]) -> models.FieldCondition:
    return models.FieldCondition(key=key, match=models.MatchAny(any=values))  # type: ignore[arg-type]


_FILTERS = FilterBuilder(models.Filter, _value, _any_of)
