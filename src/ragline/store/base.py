"""The VectorStore protocol every index backend implements."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

from ragline.records import Chunk, Hit

# A filter maps a payload key to a value. Keys are payload fields ("source", "kind", "doc_id",
# or "metadata.<field>"); values:
#   "abc"            exact match
#   ["a", "b"]       match any
#   Prefix("https://docs.ray.io/en/master/serve/")   source-prefix match (see below)
Filters = Mapping[str, Any]


def scoped(filters: Filters | None, tenant: str | None) -> dict[str, Any]:
    """``filters`` with the tenant condition on top: with ``tenant``, only its chunks match, whatever
    ``filters`` say (a ``metadata.tenant`` among them is overridden); without, ``filters`` as they are."""
    conditions = dict(filters or {})
    if tenant is not None:
        conditions["metadata.tenant"] = tenant
    return conditions


# What a search ranks by: the dense vector (cosine), BM25 over the chunk text, or both fused by
# reciprocal rank fusion inside the engine.
SearchMode = Literal["dense", "bm25", "hybrid"]
SEARCH_MODES: tuple[SearchMode, ...] = ("dense", "bm25", "hybrid")


@dataclass(frozen=True, slots=True)
class Prefix:
    """Match payload strings that start with ``value`` (used for source prefixes)."""

    value: str


@dataclass(frozen=True, slots=True)
class IndexInfo:
    """What the index was built with; stored beside the points, checked on every open."""

    model: str
    dimension: int

    def to_json(self) -> dict[str, Any]:
        return {"model": self.model, "dimension": self.dimension}


@dataclass(frozen=True, slots=True)
class StoredDocument:
    """One document as the index knows it: enough to decide what changed."""

    doc_id: str
    source: str
    doc_hash: str
    origin: str | None  # the ingest root it came from, for detecting removed files
    tenant: str | None = None  # whose document it is (metadata.tenant); None when ingested without one


@dataclass(frozen=True, slots=True)
class Fusion:
    """How hybrid search fuses its dense and BM25 candidates: weighted reciprocal rank fusion.

    Each list contributes ``1 / (rank / weight + k - 1)`` (rank from 1, as Qdrant computes it) for
    each of its first ``candidates`` points: with weight 1, the first point of a list gets ``1 / k``.
    """

    dense_weight: float = 1.0
    sparse_weight: float = 1.0
    k: int = 60
    candidates: int = 50


@runtime_checkable
class VectorStore(Protocol):
    """Dense and BM25 sparse vectors with chunk payloads, filterable, persistent."""

    def open(self, info: IndexInfo, *, recreate: bool = False) -> None:
        """Create the index, or open it and check it was built with ``info``.

        Raises IndexMismatchError when the stored model or dimension differ (unless recreate).
        """

    def info(self) -> IndexInfo | None:
        """What the stored index was built with, or None when there is no index yet."""

    def upsert(self, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        """Insert or replace points; ids are ``chunk.id``; idempotent. The BM25 vector of each chunk
        is computed here from ``chunk.embedding_text()``."""

    def delete_document(self, doc_id: str, *, keep_hash: str | None = None) -> None:
        """Delete every point of a document, except those whose doc_hash equals keep_hash."""

    def delete(self, filters: Filters) -> int:
        """Delete every point matching ``filters`` (e.g. ``{"source": Prefix(...)}``), dense and BM25
        vectors alike (they live in the same points); returns how many. Empty filters are refused."""

    def snapshot(self, target: Path) -> None:
        """Write a consistent, self-contained copy of the whole index (points, vectors, IndexInfo) into
        the new folder ``target``, after making every write durable."""

    def restore(self, source: Path, check: Callable[[VectorStore], None] | None = None) -> None:
        """Replace the whole index with the copy ``snapshot()`` wrote into ``source``, all or nothing: the copy
        is staged aside and ``check`` runs on it first; when the check (or anything before the swap) raises,
        the previous index stays in place, untouched."""

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
        """Top-k points, best first: by cosine similarity to ``vector`` (dense), by BM25 of ``text``
        (bm25), or both fused (hybrid). ``score_threshold`` bounds the cosine (dense and hybrid: in hybrid
        it filters the dense candidates) or the BM25 score (bm25)."""

    def documents(self) -> Iterator[StoredDocument]:
        """Every stored document (one entry per doc_id and doc_hash)."""

    def count(self, filters: Filters | None = None) -> int:
        """Number of points (chunks), optionally filtered."""

    def points(self, filters: Filters | None = None) -> Iterator[tuple[str, dict[str, Any]]]:
        """Every (point id, payload), optionally filtered; for tests, export and status."""

    def flush(self) -> None:
        """Make every write durable."""

    def close(self) -> None:
        """Flush and release files/connections."""
