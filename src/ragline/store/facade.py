"""One VectorStore over any Qdrant engine: everything but the engine's own calls lives here.

A backend supplies an :class:`Engine` (the embedded shard, or a collection through qdrant-client) with a
few primitive calls: load or create, write points, delete, count and scroll by conditions, and run a
:class:`~ragline.store.plan.SearchPlan`. Checks, batching, BM25 vectors, search planning, document listing
and the upgrade of an index built before BM25 are shared, so the backends cannot drift apart.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Protocol, Self, TypeVar

import numpy as np

from ragline.errors import EmptyIndexError, StoreError
from ragline.records import Chunk, Hit
from ragline.store.base import Filters, Fusion, IndexInfo, SearchMode, StoredDocument, VectorStore
from ragline.store.filters import (
    DOCUMENT_FIELDS,
    FIRST_CHUNKS,
    INTEGER_FIELDS,
    KEYWORD_FIELDS,
    Match,
    as_matrix,
    check_info,
    conditions,
    empty_index,
    point_payload,
    required_conditions,
    stale_points,
    stored_document,
)
from ragline.store.plan import Found, SearchPlan, fuse, leg_plan, plan_search, settle
from ragline.store.sparse import SparseVector, document_vector, sparse_text

log = logging.getLogger(__name__)

_SCROLL_PAGE = 512


@dataclass(frozen=True, slots=True)
class Point:
    """One point to write: the chunk's id, its dense and BM25 vectors, and its payload."""

    id: str
    dense: list[float]
    sparse: SparseVector
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Layout:
    """How a new index lays out its data (QdrantSettings); an existing index keeps the layout it was made with."""

    quantization: str = "none"  # "int8": scalar-quantised dense vectors kept in RAM, rescored from the originals
    on_disk_vectors: bool = False
    on_disk_payload: bool = True


# A page of (point id, payload) and the offset of the next page (None after the last).
Page = tuple[list[tuple[str, dict[str, Any]]], Any]


class Engine(Protocol):
    """The engine-specific calls of a store; conditions arrive as :class:`Match` lists."""

    batch_size: int  # points per write call

    @property
    def where(self) -> str:
        """Where the index lives, for messages."""

    def guard(self) -> AbstractContextManager[None]:
        """Turn the engine's transport and server errors into StoreError."""

    def stored_info(self) -> IndexInfo | None:
        """The IndexInfo recorded with the index, or None (no index, or none recorded)."""

    def exists(self) -> bool:
        """Is there an index to read? (It may be loaded for reading on first use.)"""

    def open(self, info: IndexInfo, *, recorded: bool) -> None:
        """Create the index, or load the existing one. When no IndexInfo is ``recorded`` with it, check
        what the engine can (the dense vector's size) and record ``info``."""

    def wipe(self) -> None:
        """Delete the whole index."""

    def payload_indexes(self) -> Collection[str]:
        """The payload fields already indexed."""

    def create_payload_index(self, field: str, *, integer: bool) -> None: ...

    def has_sparse(self) -> bool:
        """Does the index have the BM25 vector? (One built before BM25 does not.)"""

    def add_sparse(self) -> None:
        """Add the (empty) BM25 vector to an index built without it."""

    def upsert(self, points: Sequence[Point]) -> None: ...

    def set_sparse(self, vectors: Sequence[tuple[str, SparseVector]]) -> None:
        """Set the BM25 vector of existing points, by id."""

    def delete(self, must: Sequence[Match], must_not: Sequence[Match] = ()) -> None: ...

    def count(self, must: Sequence[Match]) -> int:
        """Exact number of points matching every condition."""

    def scroll(self, must: Sequence[Match], with_payload: bool | list[str], offset: Any, limit: int) -> Page: ...

    def query(self, plan: SearchPlan, *, payload: bool = True) -> Found:
        """Run a plan of one leg: (point id, payload or {}, score) of its hits, best first (the store fuses
        hybrid lists)."""

    def payloads(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The payloads of these points, by id (an id no longer stored is left out)."""

    def flush(self) -> None: ...

    def close(self) -> None: ...

    def snapshot(self, target: Path, info: IndexInfo) -> None:
        """Write a self-contained copy of the flushed index into the new folder ``target``."""

    def restore(self, source: Path, check: Callable[[Self], None]) -> None:
        """Replace the index with the copy in ``source``: staged aside, loaded as an engine of the same kind,
        passed to ``check``, and swapped in only when the check returns (when it raises, nothing changed)."""


E = TypeVar("E", bound=Engine)


class EngineStore(Generic[E]):
    """A VectorStore on one engine; cheap to construct, the engine connects or loads on first use."""

    def __init__(self, engine: E) -> None:
        self.engine = engine
        self._info: IndexInfo | None = None  # set by open(): writes need it
        self._bm25: bool | None = None  # does the index have BM25 vectors? (asked once per open)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def where(self) -> str:
        """Where the index lives, for messages."""
        return self.engine.where

    # -- lifecycle -------------------------------------------------------------------------------

    def open(self, info: IndexInfo, *, recreate: bool = False) -> None:
        """Create the index, or open it and check it was built with ``info``; an index built before BM25
        gets the BM25 vector, computed from the stored chunk texts, so every search mode works on it."""
        with self.engine.guard():
            self._bm25 = None
            if recreate:
                self.engine.wipe()
                self._info = None
                log.info("wiped the index at %s", self.where)
            stored = self.info()
            if stored is not None:
                check_info(stored, info, self.where)
            self.engine.open(info, recorded=stored is not None)
            self._info = info
            existing = self.engine.payload_indexes()
            for field in (*KEYWORD_FIELDS, *INTEGER_FIELDS):
                if field not in existing:
                    self.engine.create_payload_index(field, integer=field in INTEGER_FIELDS)
            if not self.engine.has_sparse():
                self._add_bm25()
            self._bm25 = True

    def info(self) -> IndexInfo | None:
        """What the index was built with, or None when there is no index yet."""
        if self._info is not None:
            return self._info
        with self.engine.guard():
            return self.engine.stored_info()

    def flush(self) -> None:
        """Make every write durable."""
        with self.engine.guard():
            self.engine.flush()

    def close(self) -> None:
        """Flush and release files and connections; open() again before writing."""
        self._info, self._bm25 = None, None
        with self.engine.guard():
            self._release_engine()

    def _release_engine(self) -> None:
        """Let go of the engine on close (a backend whose engine is shared releases it with its last user)."""
        self.engine.close()

    # -- writes ----------------------------------------------------------------------------------

    def upsert(self, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        """Insert or replace points (ids are ``chunk.id``, so repeating an upsert changes nothing)."""
        if not chunks:
            return
        if self._info is None:
            raise StoreError(f"the index at {self.where} is not open: call open() before writing")
        rows = as_matrix(chunks, vectors, self._info.dimension).tolist()
        size = self.engine.batch_size
        with self.engine.guard():
            for start in range(0, len(chunks), size):
                points = [
                    Point(chunk.id, row, document_vector(sparse_text(chunk)), point_payload(chunk))
                    for chunk, row in zip(chunks[start : start + size], rows[start : start + size], strict=True)
                ]
                self.engine.upsert(points)

    def delete_document(self, doc_id: str, *, keep_hash: str | None = None) -> None:
        """Delete a document's points, except those whose doc_hash equals ``keep_hash``."""
        with self.engine.guard():
            if self.engine.exists():
                self.engine.delete(*stale_points(doc_id, keep_hash))

    def delete(self, filters: Filters) -> int:
        """Delete every point matching ``filters``; returns how many (both vectors go with each point)."""
        must = required_conditions(filters)
        with self.engine.guard():
            if not self.engine.exists():
                return 0
            n = self.engine.count(must)
            if n:
                self.engine.delete(must)
        return n

    # -- snapshots -------------------------------------------------------------------------------

    def snapshot(self, target: Path) -> None:
        """Write a consistent, self-contained copy of the whole index into the new folder ``target``."""
        with self.engine.guard():
            info = self.info()
            if info is None or not self.engine.exists():
                raise EmptyIndexError(f"no index at {self.where} to snapshot: run `ragline ingest` first")
            self.engine.flush()
            self.engine.snapshot(target, info)

    def restore(self, source: Path, check: Callable[[VectorStore], None] | None = None) -> None:
        """Replace the whole index with the copy ``snapshot()`` wrote into ``source`` once ``check`` passed on
        the staged copy (a failing check leaves the index as it was); open() before writing."""

        def check_staged(staged: E) -> None:
            if check is not None:
                check(EngineStore(staged))

        with self.engine.guard():
            self.engine.restore(source, check_staged)
        self._info, self._bm25 = None, None
        log.info("restored the index at %s from %s", self.where, source)

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
        with self.engine.guard():
            info = self.info()
            plan = plan_search(
                vector,
                k,
                dimension=info.dimension if info else None,
                filters=filters,
                score_threshold=score_threshold,
                text=text,
                mode=mode,
                fusion=fusion,
            )
            if not self.engine.exists():
                raise empty_index(self.where)
            if mode != "dense" and not self._has_bm25():
                raise StoreError(
                    f"the index at {self.where} was built before BM25: open it once (any ingest or query "
                    "does) to add the BM25 vectors"
                )
            found = self._ranked(plan) if plan.legs else []
            if not found and self.engine.count([]) == 0:
                raise empty_index(self.where)
        return [Hit(Chunk.from_payload(payload), score) for _, payload, score in found]

    def _ranked(self, plan: SearchPlan) -> Found:
        """The plan's points, best first, ties in chunk id order: the same question gets the same hits in every
        process and replica. Hybrid lists are fused here, each ranked list settled first, since a point's fused
        score depends on its rank in each list and engines rank tied points in any order."""
        if not plan.fused:
            return settle(self.engine.query(leg_plan(plan, plan.legs[0])), plan.limit)
        assert plan.weights is not None
        # The ranked lists without payloads (reading payloads costs more than ranking), then the fused points'.
        lists = [settle(self.engine.query(leg_plan(plan, leg), payload=False), leg.limit) for leg in plan.legs]
        fused = settle(fuse(lists, plan.weights, plan.rrf_k), plan.limit)
        payloads = self.engine.payloads([point for point, _, _ in fused])
        return [(point, payloads[point], score) for point, _, score in fused if point in payloads]

    def documents(self) -> Iterator[StoredDocument]:
        """One entry per (doc_id, doc_hash), read from first chunks only."""
        seen: set[tuple[str, str]] = set()
        for _, payload in self._scroll([FIRST_CHUNKS], list(DOCUMENT_FIELDS)):
            doc = stored_document(payload)
            if (doc.doc_id, doc.doc_hash) not in seen:
                seen.add((doc.doc_id, doc.doc_hash))
                yield doc

    def count(self, filters: Filters | None = None) -> int:
        """Number of points (chunks), optionally filtered."""
        must = conditions(filters)
        with self.engine.guard():
            return self.engine.count(must) if self.engine.exists() else 0

    def points(self, filters: Filters | None = None) -> Iterator[tuple[str, dict[str, Any]]]:
        """Every (point id, payload), optionally filtered."""
        yield from self._scroll(conditions(filters), True)

    # -- internals -------------------------------------------------------------------------------

    def _scroll(self, must: list[Match], with_payload: bool | list[str]) -> Iterator[tuple[str, dict[str, Any]]]:
        with self.engine.guard():
            if not self.engine.exists():
                return
            offset: Any = None
            while True:
                records, offset = self.engine.scroll(must, with_payload, offset, _SCROLL_PAGE)
                yield from records
                if offset is None:
                    return

    def _has_bm25(self) -> bool:
        if self._bm25 is None:
            self._bm25 = self.engine.has_sparse()
        return self._bm25

    def _add_bm25(self) -> None:
        """Add the BM25 vector to an index built without it, and compute it for the points already there."""
        started = time.perf_counter()
        self.engine.add_sparse()
        batch: list[tuple[str, SparseVector]] = []
        filled = 0
        for pid, payload in list(self._scroll([], True)):
            batch.append((pid, document_vector(sparse_text(Chunk.from_payload(payload)))))
            if len(batch) >= self.engine.batch_size:
                self.engine.set_sparse(batch)
                filled, batch = filled + len(batch), []
        if batch:
            self.engine.set_sparse(batch)
            filled += len(batch)
        log.info("added BM25 vectors to %d points of %s in %.1f s", filled, self.where, time.perf_counter() - started)
