"""The embedded Qdrant engine (qdrant-edge) as a VectorStore: one persistent shard in a local folder.

Layout of ``path``: ``shard/`` is the engine's shard (segments, WAL, its config) and ``index.json`` is the
IndexInfo the shard was built with. Search is exact right after an upsert (new points land in a plain
appendable segment that is scanned); ``optimize()`` only builds the HNSW graph and vacuums deletions, which
makes later searches faster, so it runs in ``flush()`` once per batch of writes rather than after each one.

Each point holds a dense vector and a BM25 sparse vector (``bm25``, IDF applied by the engine); hybrid
search fuses the two candidate lists with reciprocal rank fusion inside the engine. A shard built before
BM25 existed gets the sparse vector added, and filled from the stored chunk texts, when it is opened.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import qdrant_edge as qe

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

INFO_FILE = "index.json"
SHARD_DIR = "shard"
CONFIG_FILE = "edge_config.json"  # the engine's own record of the shard's vectors
_UPSERT_BATCH = 512
# Scores of int8-quantised vectors are recomputed from the originals, so cosine scores (and thresholds)
# mean the same with quantisation on; without quantisation the engine ignores it.
_RESCORE = qe.SearchParams(quantization=qe.QuantizationSearchParams(rescore=True))
_SCROLL_PAGE = 512


class EdgeStore:
    """A VectorStore on qdrant-edge, persistent in ``path``; cheap to construct, files open on first use."""

    def __init__(
        self, path: Path, *, quantization: str = "none", on_disk_vectors: bool = False, on_disk_payload: bool = True
    ) -> None:
        self.path = Path(path)
        # How a new shard lays out its data (QdrantSettings); an existing shard keeps the layout it was made with.
        self.quantization = quantization
        self.on_disk_vectors = on_disk_vectors
        self.on_disk_payload = on_disk_payload
        self._shard: qe.EdgeShard | None = None
        self._info: IndexInfo | None = None
        self._dirty = False  # written since the last flush: flush() then optimizes
        # Server threads may race to load the shard lazily; the engine allows one loader per folder.
        self._load_lock = threading.Lock()

    def __enter__(self) -> EdgeStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- lifecycle -------------------------------------------------------------------------------

    def open(self, info: IndexInfo, *, recreate: bool = False) -> None:
        """Create the shard, or load it and check it was built with ``info``."""
        if recreate:
            self._wipe()
        stored = self.info()
        if stored is not None:
            check_info(stored, info, str(self.path))
        elif self._shard is not None:  # loaded for reading without index.json: reload it checked
            self._shard.close()
            self._shard = None
        if self._shard is None:
            self._shard = self._load_or_create(info, validate=stored is None)
        if stored is None:
            self._write_info(info)
        self._info = info
        self._ensure_indexes(self._shard)
        self._ensure_sparse(self._shard)

    def info(self) -> IndexInfo | None:
        """The IndexInfo in ``index.json``, or None when there is no index yet."""
        if self._info is not None:
            return self._info
        try:
            data = json.loads((self.path / INFO_FILE).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as e:
            raise StoreError(f"cannot read {self.path / INFO_FILE}: {e}") from e
        return info_from_json(data)

    def flush(self) -> None:
        """Optimize what this session wrote (HNSW build, vacuum), then persist the segments."""
        if self._shard is None:
            return
        if self._dirty:
            started = time.perf_counter()
            if self._shard.optimize():
                log.info("optimized the index at %s in %.1f s", self.path, time.perf_counter() - started)
            self._dirty = False
        self._shard.flush()

    def close(self) -> None:
        """Flush and release the shard's files (and its WAL lock)."""
        if self._shard is None:
            return
        try:
            self.flush()
        finally:
            self._shard.close()
            self._shard = None

    # -- writes ----------------------------------------------------------------------------------

    def upsert(self, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        """Insert or replace points (ids are ``chunk.id``, so repeating an upsert changes nothing)."""
        if not chunks:
            return
        shard, info = self._writable()
        matrix = as_matrix(chunks, vectors, info.dimension)
        for start in range(0, len(chunks), _UPSERT_BATCH):
            points = [
                qe.Point(
                    chunk.id, {DENSE: row, SPARSE: _sparse(document_vector(sparse_text(chunk)))}, point_payload(chunk)
                )
                for chunk, row in zip(
                    chunks[start : start + _UPSERT_BATCH],
                    matrix[start : start + _UPSERT_BATCH].tolist(),
                    strict=True,
                )
            ]
            shard.update(qe.UpdateOperation.upsert_points(points))
        self._dirty = True

    def delete_document(self, doc_id: str, *, keep_hash: str | None = None) -> None:
        """Delete a document's points, except those whose doc_hash equals ``keep_hash``."""
        shard = self._readable()
        if shard is None:
            return
        must, must_not = stale_points(doc_id, keep_hash)
        shard.update(qe.UpdateOperation.delete_points_by_filter(_filter(must, must_not)))
        self._dirty = True

    def delete(self, filters: Filters) -> int:
        """Delete every point matching ``filters``; returns how many (both vectors go with each point)."""
        where = _filter(required_conditions(filters))
        shard = self._readable()
        if shard is None:
            return 0
        n = shard.count(qe.CountRequest(exact=True, filter=where))
        if n:
            shard.update(qe.UpdateOperation.delete_points_by_filter(where))
            self._dirty = True
        return n

    # -- snapshots -------------------------------------------------------------------------------

    def snapshot(self, target: Path) -> None:
        """Copy the flushed shard and index.json into ``target``. The loaded shard holds the folder's WAL
        lock, so no other process writes while the files are copied."""
        shard = self._readable()
        if shard is None or self.info() is None:
            raise EmptyIndexError(f"no index at {self.path} to snapshot: run `ragline ingest` first")
        self.flush()
        target.mkdir(parents=True)
        shutil.copy2(self.path / INFO_FILE, target / INFO_FILE)
        shutil.copytree(self.path / SHARD_DIR, target / SHARD_DIR)

    def restore(self, source: Path) -> None:
        """Replace the index folder with a copy of ``source``: staged beside it and checked to load, then
        swapped in by two renames, so the live index is never half-copied."""
        if not (source / INFO_FILE).is_file() or not _has_shard(source / SHARD_DIR):
            raise StoreError(f"{source} holds no index snapshot")
        stage = self.path.with_name(f".{self.path.name}.restoring")
        retired = self.path.with_name(f".{self.path.name}.replaced")
        shutil.rmtree(stage, ignore_errors=True)
        shutil.rmtree(retired, ignore_errors=True)
        shutil.copytree(source, stage)
        try:
            qe.EdgeShard.load(str(stage / SHARD_DIR), None).close()
        except Exception as e:  # the engine raises plain Exception
            shutil.rmtree(stage, ignore_errors=True)
            raise StoreError(f"the snapshot at {source} does not load: {e}") from e
        try:
            self._readable()  # fails while another process holds the index, before anything is replaced
        except StoreError:
            shutil.rmtree(stage, ignore_errors=True)
            raise
        if self._shard is not None:
            self._shard.close()
            self._shard = None
        self._info = None
        self._dirty = False
        if self.path.exists():
            os.replace(self.path, retired)
        os.replace(stage, self.path)
        shutil.rmtree(retired, ignore_errors=True)
        log.info("restored the index at %s from %s", self.path, source)

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
        shard = self._readable()
        if shard is None:
            raise empty_index(str(self.path))
        info = self.info()
        where = _maybe_filter(conditions(filters))
        dense = (
            qe.Query.Nearest(as_query(vector, info.dimension if info else None), using=DENSE)
            if vector is not None and mode != "bm25"
            else None
        )
        sparse = query_vector(text or "") if mode != "dense" else SparseVector([], [])
        if mode == "dense" or (mode == "bm25" and sparse):
            query = dense if mode == "dense" else qe.Query.Nearest(_sparse(sparse), using=SPARSE)
            request = qe.QueryRequest(
                limit=k,
                query=query,
                filter=where,
                score_threshold=score_threshold,
                with_payload=True,
                params=_RESCORE if mode == "dense" else None,
            )
        elif mode == "bm25":  # only stop words: nothing can match
            request = None
        else:
            f, n = fusion_plan(k, fusion)
            prefetches = [
                qe.Prefetch(limit=n, query=dense, filter=where, score_threshold=score_threshold, params=_RESCORE)
            ]
            weights = [f.dense_weight]
            if sparse:
                prefetches.append(
                    qe.Prefetch(limit=n, query=qe.Query.Nearest(_sparse(sparse), using=SPARSE), filter=where)
                )
                weights.append(f.sparse_weight)
            request = qe.QueryRequest(
                limit=k,
                prefetches=prefetches,
                query=qe.Fusion.Rrf(k=f.k, weights=weights),  # type: ignore[arg-type]
                with_payload=True,
            )
        points = shard.query(request) if request is not None else []
        if not points and shard.info().points_count == 0:
            raise empty_index(str(self.path))
        return [Hit(Chunk.from_payload(p.payload or {}), float(p.score)) for p in points]

    def documents(self) -> Iterator[StoredDocument]:
        """One entry per (doc_id, doc_hash), read from first chunks only."""
        seen: set[tuple[str, str]] = set()
        for _, payload in self._scroll([FIRST_CHUNKS], list(DOCUMENT_FIELDS)):
            doc = stored_document(payload)
            if (doc.doc_id, doc.doc_hash) not in seen:
                seen.add((doc.doc_id, doc.doc_hash))
                yield doc

    def count(self, filters: Filters | None = None) -> int:
        shard = self._readable()
        if shard is None:
            return 0
        return shard.count(qe.CountRequest(exact=True, filter=_maybe_filter(conditions(filters))))

    def points(self, filters: Filters | None = None) -> Iterator[tuple[str, dict[str, Any]]]:
        yield from self._scroll(conditions(filters), True)

    # -- internals -------------------------------------------------------------------------------

    def _scroll(self, must: list[Match], with_payload: bool | list[str]) -> Iterator[tuple[str, dict[str, Any]]]:
        shard = self._readable()
        if shard is None:
            return
        offset: Any = None
        while True:
            request = qe.ScrollRequest(
                offset=offset, limit=_SCROLL_PAGE, filter=_maybe_filter(must), with_payload=with_payload
            )
            records, offset = shard.scroll(request)
            for record in records:
                yield str(record.id), dict(record.payload or {})
            if offset is None:
                return

    def _readable(self) -> qe.EdgeShard | None:
        """The shard, loaded on first use if it exists on disk (reads need no IndexInfo to check)."""
        if self._shard is None:
            with self._load_lock:
                if self._shard is None and _has_shard(self.path / SHARD_DIR):
                    self._shard = self._load(None)
        return self._shard

    def _writable(self) -> tuple[qe.EdgeShard, IndexInfo]:
        if self._shard is None or self._info is None:
            raise StoreError(f"the index at {self.path} is not open: call open() before writing")
        return self._shard, self._info

    def _load_or_create(self, info: IndexInfo, *, validate: bool) -> qe.EdgeShard:
        shard_dir = self.path / SHARD_DIR
        dense = {DENSE: qe.EdgeVectorParams(size=info.dimension, distance=qe.Distance.Cosine)}
        if _has_shard(shard_dir):
            # Without index.json (a crash between creating the shard and writing it) the engine
            # still checks the vector size; the model name cannot be checked.
            return self._load(qe.EdgeConfig(vectors=dense) if validate else None)
        log.info("creating the index at %s (%s, %d dimensions)", self.path, info.model, info.dimension)
        config = self._new_config(info)
        try:
            return qe.EdgeShard.create(str(shard_dir), config)
        except Exception as e:  # the engine raises plain Exception
            raise StoreError(f"cannot create the index at {self.path}: {e}") from e

    def _new_config(self, info: IndexInfo) -> qe.EdgeConfig:
        """A new shard's config: dense + BM25 vectors, with the memory layout asked for."""
        # Cold: read from disk through the page cache, nothing held by the process; Pinned: kept in RAM.
        stored = qe.Memory.Cold if self.on_disk_vectors else None
        quantized = (
            qe.ScalarQuantizationConfig(qe.ScalarType.Int8, quantile=0.99, memory=qe.Memory.Pinned)
            if self.quantization == "int8"
            else None
        )
        dense = qe.EdgeVectorParams(
            size=info.dimension, distance=qe.Distance.Cosine, memory=stored, quantization_config=quantized
        )
        sparse = qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf, memory=stored)
        return qe.EdgeConfig(
            vectors={DENSE: dense},
            sparse_vectors={SPARSE: sparse},
            payload_memory=qe.Memory.Cold if self.on_disk_payload else qe.Memory.Cached,
        )

    def _load(self, config: qe.EdgeConfig | None) -> qe.EdgeShard:
        try:
            return qe.EdgeShard.load(str(self.path / SHARD_DIR), config)
        except Exception as e:  # the engine raises plain Exception
            if "incompatible" in str(e).lower():
                raise IndexMismatchError(
                    f"the index at {self.path} does not fit: {e}; re-ingest with --recreate"
                ) from e
            hint = " (is another ragline process using it?)" if "WAL" in str(e) else ""
            raise StoreError(f"cannot open the index at {self.path}: {e}{hint}") from e

    def _ensure_indexes(self, shard: qe.EdgeShard) -> None:
        """Create the payload indexes filters and documents() rely on, once per shard."""
        existing = shard.info().payload_schema
        wanted = [(f, qe.PayloadSchemaType.Keyword) for f in KEYWORD_FIELDS]
        wanted += [(f, qe.PayloadSchemaType.Integer) for f in INTEGER_FIELDS]
        for field, schema in wanted:
            if field not in existing:
                shard.update(qe.UpdateOperation.create_field_index(field, schema))

    def _has_sparse(self) -> bool:
        try:
            config = json.loads((self.path / SHARD_DIR / CONFIG_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        return SPARSE in (config.get("sparse_vectors") or {})

    def _ensure_sparse(self, shard: qe.EdgeShard) -> None:
        """Add the BM25 vector to a shard built without it, and compute it for the points already there."""
        if self._has_sparse():
            return
        started = time.perf_counter()
        shard.update(qe.UpdateOperation.create_sparse_vector(SPARSE, modifier=qe.Modifier.Idf))
        batch: list[qe.PointVectors] = []
        filled = 0
        for pid, payload in list(self._scroll([], True)):
            vector = document_vector(sparse_text(Chunk.from_payload(payload)))
            batch.append(qe.PointVectors(_point_id(pid), {SPARSE: _sparse(vector)}))
            if len(batch) >= _UPSERT_BATCH:
                shard.update(qe.UpdateOperation.update_vectors(batch))
                filled, batch = filled + len(batch), []
        if batch:
            shard.update(qe.UpdateOperation.update_vectors(batch))
            filled += len(batch)
        self._dirty = True
        log.info("added BM25 vectors to %d points of %s in %.1f s", filled, self.path, time.perf_counter() - started)

    def _wipe(self) -> None:
        """Delete the index (info first, so a crash half-way leaves no index that claims to be whole)."""
        if self._shard is not None:
            self._shard.close()
            self._shard = None
        self._info = None
        self._dirty = False
        (self.path / INFO_FILE).unlink(missing_ok=True)
        shutil.rmtree(self.path / SHARD_DIR, ignore_errors=True)
        log.info("wiped the index at %s", self.path)

    def _write_info(self, info: IndexInfo) -> None:
        """Write index.json atomically: a reader sees the old file or the new one, never half of one."""
        self.path.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".index-", suffix=".json", dir=self.path)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(info.to_json(), f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path / INFO_FILE)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def _sparse(v: SparseVector) -> qe.SparseVector:
    return qe.SparseVector(indices=v.indices, values=v.values)


def _point_id(pid: str) -> str | int:
    return int(pid) if pid.isdigit() else pid


def _has_shard(shard_dir: Path) -> bool:
    return shard_dir.is_dir() and any(shard_dir.iterdir())


def _maybe_filter(must: Sequence[Match]) -> qe.Filter | None:
    return _filter(must) if must else None


def _filter(must: Sequence[Match], must_not: Sequence[Match] = ()) -> qe.Filter:
    return qe.Filter(
        must=[_condition(m) for m in must] or None,
        must_not=[_condition(m) for m in must_not] or None,
    )


def _condition(m: Match) -> qe.FieldCondition:
    if len(m.values) != 1:
        return qe.FieldCondition(m.key, match=qe.MatchAny(list(m.values)))  # type: ignore[arg-type]
    value = m.values[0]
    if isinstance(value, bool):
        # qdrant-edge 0.9 reads a Python bool as the integer 1 or 0, which never matches a stored
        # boolean; numpy's bool reaches the engine as a boolean.
        return qe.FieldCondition(m.key, match=qe.MatchValue(np.bool_(value)))  # type: ignore[arg-type]
    return qe.FieldCondition(m.key, match=qe.MatchValue(value))
