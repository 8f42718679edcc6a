"""The VectorStore protocol every index backend implements."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ragline.records import Chunk, Hit

# A filter maps a payload key to a value. Keys are payload fields ("source", "kind", "doc_id",
# or "metadata.<field>"); values:
#   "abc"            exact match
#   ["a", "b"]       match any
#   Prefix("https://docs.ray.io/en/master/serve/")   source-prefix match (see below)
Filters = Mapping[str, Any]


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


@runtime_checkable
class VectorStore(Protocol):
    """Dense vectors with chunk payloads, filterable, persistent."""

    def open(self, info: IndexInfo, *, recreate: bool = False) -> None:
        """Create the index, or open it and check it was built with ``info``.

        Raises IndexMismatchError when the stored model or dimension differ (unless recreate).
        """

    def info(self) -> IndexInfo | None:
        """What the stored index was built with, or None when there is no index yet."""

    def upsert(self, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        """Insert or replace points; ids are ``chunk.id``; idempotent."""

    def delete_document(self, doc_id: str, *, keep_hash: str | None = None) -> None:
        """Delete every point of a document, except those whose doc_hash equals keep_hash."""

    def search(
        self,
        vector: np.ndarray,
        k: int,
        *,
        filters: Filters | None = None,
        score_threshold: float | None = None,
    ) -> list[Hit]:
        """Top-k points by cosine similarity, best first."""

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
