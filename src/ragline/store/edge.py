"""The embedded Qdrant engine (qdrant-edge) as a VectorStore: one persistent shard in a local folder.

Layout of ``path``: ``shard/`` is the engine's shard (segments, WAL, its config) and ``index.json`` is the
IndexInfo the shard was built with. Search is exact right after an upsert (new points land in a plain
appendable segment that is scanned); ``optimize()`` only builds the HNSW graph and vacuums deletions, which
makes later searches faster, so it runs in ``flush()`` once per batch of writes rather than after each one.

Each point holds a dense vector and a BM25 sparse vector (``bm25``, IDF applied by the engine); hybrid
search fuses the two candidate lists with reciprocal rank fusion inside the engine. Everything but the
engine's own calls is shared with the other backend (:mod:`ragline.store.facade`).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Collection, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import qdrant_edge as qe

from ragline.errors import IndexMismatchError, StoreError
from ragline.store.base import IndexInfo
from ragline.store.facade import EngineStore, Layout, Page, Point
from ragline.store.filters import DENSE, FilterBuilder, Match, Scalar, info_from_json
from ragline.store.plan import Found, Leg, SearchPlan
from ragline.store.shared import SharedEngines
from ragline.store.sparse import SPARSE, SparseVector

log = logging.getLogger(__name__)

INFO_FILE = "index.json"
SHARD_DIR = "shard"
CONFIG_FILE = "edge_config.json"  # the engine's own record of the shard's vectors
# Scores of int8-quantised vectors are recomputed from the originals, so cosine scores (and thresholds)
# mean the same with quantisation on; without quantisation the engine ignores it.
_RESCORE = qe.SearchParams(quantization=qe.QuantizationSearchParams(rescore=True))


class EdgeStore(EngineStore["EdgeEngine"]):
    """A VectorStore on qdrant-edge, persistent in ``path``; cheap to construct, files open on first use.

    The engine lets one loader per process hold a folder, so the stores of one folder in a process share
    its engine (a second ``ragline.open()`` of a data dir, two retrievers over one index, a notebook cell
    run again); the files are released when the last of them closes.
    """

    def __init__(
        self, path: Path, *, quantization: str = "none", on_disk_vectors: bool = False, on_disk_payload: bool = True
    ) -> None:
        layout = Layout(quantization, on_disk_vectors, on_disk_payload)
        super().__init__(_ENGINES.acquire(Path(path), lambda: EdgeEngine(Path(path), layout)))
        self._holding = True

    @property
    def path(self) -> Path:
        return self.engine.path

    def open(self, info: IndexInfo, *, recreate: bool = False) -> None:
        if not self._holding:  # opened again after close(): hold the engine again
            self.engine = _ENGINES.hold(self.engine)
            self._holding = True
        super().open(info, recreate=recreate)

    def _release_engine(self) -> None:
        last = True
        if self._holding:
            self._holding = False
            last = _ENGINES.release(self.engine)
        if last:
            self.engine.close()
        else:  # other stores of this process still read it: make this one's writes durable, keep it loaded
            self.engine.flush()


class EdgeEngine:
    """One qdrant-edge shard in ``path``, with its IndexInfo in ``index.json``."""

    batch_size = 512

    def __init__(self, path: Path, layout: Layout) -> None:
        self.path = path
        self.layout = layout
        self._shard: qe.EdgeShard | None = None
        self._dirty = False  # written since the last flush: flush() then optimizes
        # Server threads may race to load the shard lazily; the engine allows one loader per folder.
        self._load_lock = threading.Lock()

    @property
    def where(self) -> str:
        return str(self.path)

    def guard(self) -> AbstractContextManager[None]:
        return nullcontext()  # the engine's errors are translated where they can arise

    # -- lifecycle -------------------------------------------------------------------------------

    def stored_info(self) -> IndexInfo | None:
        try:
            data = json.loads((self.path / INFO_FILE).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as e:
            raise StoreError(f"cannot read {self.path / INFO_FILE}: {e}") from e
        return info_from_json(data)

    def exists(self) -> bool:
        return self._readable() is not None

    def open(self, info: IndexInfo, *, recorded: bool) -> None:
        if not recorded and self._shard is not None:  # loaded for reading without index.json: reload it checked
            self._shard.close()
            self._shard = None
        if self._shard is None:
            self._shard = self._load_or_create(info, validate=not recorded)
        if not recorded:
            self._write_info(info)

    def wipe(self) -> None:
        """Delete the index (info first, so a crash half-way leaves no index that claims to be whole)."""
        self._release()
        (self.path / INFO_FILE).unlink(missing_ok=True)
        shutil.rmtree(self.path / SHARD_DIR, ignore_errors=True)

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
            self._release()

    # -- payload indexes and the BM25 vector -----------------------------------------------------

    def payload_indexes(self) -> Collection[str]:
        return set(self._loaded().info().payload_schema)

    def create_payload_index(self, field: str, *, integer: bool) -> None:
        schema = qe.PayloadSchemaType.Integer if integer else qe.PayloadSchemaType.Keyword
        self._loaded().update(qe.UpdateOperation.create_field_index(field, schema))

    def has_sparse(self) -> bool:
        try:
            config = json.loads((self.path / SHARD_DIR / CONFIG_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        return SPARSE in (config.get("sparse_vectors") or {})

    def add_sparse(self) -> None:
        self._write(qe.UpdateOperation.create_sparse_vector(SPARSE, modifier=qe.Modifier.Idf))

    def set_sparse(self, vectors: Sequence[tuple[str, SparseVector]]) -> None:
        batch = [qe.PointVectors(_point_id(pid), {SPARSE: _sparse(v)}) for pid, v in vectors]
        self._write(qe.UpdateOperation.update_vectors(batch))

    # -- points ----------------------------------------------------------------------------------

    def upsert(self, points: Sequence[Point]) -> None:
        batch = [qe.Point(p.id, {DENSE: p.dense, SPARSE: _sparse(p.sparse)}, p.payload) for p in points]
        self._write(qe.UpdateOperation.upsert_points(batch))

    def delete(self, must: Sequence[Match], must_not: Sequence[Match] = ()) -> None:
        self._write(qe.UpdateOperation.delete_points_by_filter(_FILTERS.build(must, must_not)))

    def count(self, must: Sequence[Match]) -> int:
        return self._loaded().count(qe.CountRequest(exact=True, filter=_FILTERS.optional(must)))

    def scroll(self, must: Sequence[Match], with_payload: bool | list[str], offset: Any, limit: int) -> Page:
        request = qe.ScrollRequest(
            offset=offset, limit=limit, filter=_FILTERS.optional(must), with_payload=with_payload
        )
        records, offset = self._loaded().scroll(request)
        return [(str(r.id), dict(r.payload or {})) for r in records], offset

    def query(self, plan: SearchPlan, *, payload: bool = True) -> Found:
        [leg] = plan.legs  # fused plans are fused by the store (ragline.store.plan.fuse)
        request = qe.QueryRequest(
            limit=leg.limit,
            query=_nearest(leg),
            filter=_FILTERS.optional(plan.where),
            score_threshold=leg.score_threshold,
            with_payload=payload,
            params=_RESCORE if leg.dense else None,
        )
        return [(str(p.id), dict(p.payload or {}), float(p.score)) for p in self._loaded().query(request)]

    def payloads(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        records = self._loaded().retrieve([_point_id(i) for i in ids], True, False)
        return {str(r.id): dict(r.payload or {}) for r in records}

    # -- snapshots -------------------------------------------------------------------------------

    def snapshot(self, target: Path, info: IndexInfo) -> None:
        """Copy the flushed shard and index.json into ``target``. The loaded shard holds the folder's WAL
        lock, so no other process writes while the files are copied."""
        target.mkdir(parents=True)
        shutil.copy2(self.path / INFO_FILE, target / INFO_FILE)
        shutil.copytree(self.path / SHARD_DIR, target / SHARD_DIR)

    def restore(self, source: Path, check: Callable[[EdgeEngine], None]) -> None:
        """Replace the index folder with a copy of ``source``: staged beside it, loaded and checked there, then
        swapped in by two renames, so the live index is never half-copied nor replaced by a failing copy."""
        if not (source / INFO_FILE).is_file() or not _has_shard(source / SHARD_DIR):
            raise StoreError(f"{source} holds no index snapshot")
        stage = self.path.with_name(f".{self.path.name}.restoring")
        retired = self.path.with_name(f".{self.path.name}.replaced")
        shutil.rmtree(stage, ignore_errors=True)
        shutil.rmtree(retired, ignore_errors=True)
        shutil.copytree(source, stage)
        staged = EdgeEngine(stage, self.layout)
        try:
            try:
                staged._loaded()
            except StoreError as e:
                raise StoreError(f"the snapshot at {source} does not load: {e}") from e
            check(staged)
            staged._release()
            self._readable()  # fails while another process holds the index, before anything is replaced
        except BaseException:
            staged._release()
            shutil.rmtree(stage, ignore_errors=True)
            raise
        self._release()
        if self.path.exists():
            os.replace(self.path, retired)
        os.replace(stage, self.path)
        shutil.rmtree(retired, ignore_errors=True)

    # -- internals -------------------------------------------------------------------------------

    def _readable(self) -> qe.EdgeShard | None:
        """The shard, loaded on first use if it exists on disk (reads need no IndexInfo to check)."""
        if self._shard is None:
            with self._load_lock:
                if self._shard is None and _has_shard(self.path / SHARD_DIR):
                    self._shard = self._load(None)
        return self._shard

    def _loaded(self) -> qe.EdgeShard:
        shard = self._readable()
        if shard is None:
            raise StoreError(f"there is no index at {self.path}")
        return shard

    def _write(self, operation: qe.UpdateOperation) -> None:
        self._loaded().update(operation)
        self._dirty = True

    def _release(self) -> None:
        if self._shard is not None:
            self._shard.close()
            self._shard = None
        self._dirty = False

    def _load_or_create(self, info: IndexInfo, *, validate: bool) -> qe.EdgeShard:
        shard_dir = self.path / SHARD_DIR
        dense = {DENSE: qe.EdgeVectorParams(size=info.dimension, distance=qe.Distance.Cosine)}
        if _has_shard(shard_dir):
            # Without index.json (a crash between creating the shard and writing it) the engine
            # still checks the vector size; the model name cannot be checked.
            return self._load(qe.EdgeConfig(vectors=dense) if validate else None)
        log.info("creating the index at %s (%s, %d dimensions)", self.path, info.model, info.dimension)
        try:
            return qe.EdgeShard.create(str(shard_dir), self._new_config(info))
        except Exception as e:  # the engine raises plain Exception
            raise StoreError(f"cannot create the index at {self.path}: {e}") from e

    def _new_config(self, info: IndexInfo) -> qe.EdgeConfig:
        """A new shard's config: dense + BM25 vectors, with the memory layout asked for."""
        # Cold: read from disk through the page cache, nothing held by the process; Pinned: kept in RAM.
        stored = qe.Memory.Cold if self.layout.on_disk_vectors else None
        quantized = (
            qe.ScalarQuantizationConfig(qe.ScalarType.Int8, quantile=0.99, memory=qe.Memory.Pinned)
            if self.layout.quantization == "int8"
            else None
        )
        dense = qe.EdgeVectorParams(
            size=info.dimension, distance=qe.Distance.Cosine, memory=stored, quantization_config=quantized
        )
        sparse = qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf, memory=stored)
        return qe.EdgeConfig(
            vectors={DENSE: dense},
            sparse_vectors={SPARSE: sparse},
            payload_memory=qe.Memory.Cold if self.layout.on_disk_payload else qe.Memory.Cached,
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


def _nearest(leg: Leg) -> qe.Query:
    vector = _sparse(leg.vector) if isinstance(leg.vector, SparseVector) else leg.vector
    return qe.Query.Nearest(vector, using=leg.using)


def _sparse(v: SparseVector) -> qe.SparseVector:
    return qe.SparseVector(indices=v.indices, values=v.values)


def _point_id(pid: str) -> str | int:
    return int(pid) if pid.isdigit() else pid


def _has_shard(shard_dir: Path) -> bool:
    return shard_dir.is_dir() and any(shard_dir.iterdir())


def _value(key: str, value: Scalar) -> qe.FieldCondition:
    # qdrant-edge 0.9 reads a Python bool as the integer 1 or 0, which never matches a stored boolean;
    # numpy's bool reaches the engine as a boolean.
    match = qe.MatchValue(np.bool_(value) if isinstance(value, bool) else value)  # type: ignore[arg-type]
    return qe.FieldCondition(key, match=match)


def _any_of(key: str, values: list[Scalar]) -> qe.FieldCondition:
    return qe.FieldCondition(key, match=qe.MatchAny(values))  # type: ignore[arg-type]


_FILTERS = FilterBuilder(qe.Filter, _value, _any_of)


_ENGINES: SharedEngines[EdgeEngine] = SharedEngines()
