"""Payload, filter and index-identity helpers shared by every vector-store backend.

Both backends store the same payload (the chunk's own, plus the derived ``source_prefixes``) and reduce a
``Filters`` mapping to the same few :class:`Match` conditions, which each backend turns into its engine's
classes. Keeping the semantics here is what makes the backends answer alike (the contract tests check it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ragline.errors import BadRequestError, EmptyIndexError, IndexMismatchError, StoreError
from ragline.records import Chunk
from ragline.store.base import SEARCH_MODES, Filters, Fusion, IndexInfo, Prefix, SearchMode, StoredDocument

# The dense vector's name: a sparse "bm25" vector can later sit beside it in the same points.
DENSE = "dense"
KEYWORD_FIELDS = ("doc_id", "source", "kind", "doc_hash", "origin", "source_prefixes")
INTEGER_FIELDS = ("chunk_index",)
# documents() reads only these, and only from each document's first chunk, so it stays cheap.
DOCUMENT_FIELDS = ("doc_id", "source", "doc_hash", "origin", "metadata")

Scalar = str | int | bool


@dataclass(frozen=True, slots=True)
class Match:
    """One condition: the payload field ``key`` (dotted for nested) holds one of ``values``."""

    key: str
    values: tuple[Scalar, ...]


FIRST_CHUNKS = Match("chunk_index", (0,))


def source_prefixes(source: str) -> list[str]:
    """Every prefix of ``source`` that ends at a "/" (after any ``scheme://``), then ``source`` itself.

    Qdrant has no keyword prefix match, so a prefix filter becomes an exact match on this list.
    """
    scheme = source.find("://")
    start = scheme + 3 if scheme != -1 else 0
    prefixes = [source[: i + 1] for i in range(start, len(source)) if source[i] == "/"]
    if not prefixes or prefixes[-1] != source:
        prefixes.append(source)
    return prefixes


def point_payload(chunk: Chunk) -> dict[str, Any]:
    """What is stored with a chunk's vector: its payload plus the derived ``source_prefixes``."""
    payload = chunk.payload()
    payload["source_prefixes"] = source_prefixes(chunk.source)
    return payload


def conditions(filters: Filters | None) -> list[Match]:
    """Translate a ``Filters`` mapping into conditions that must all hold.

    ``str``/``int``/``bool`` match exactly, a list matches any of its items, and ``Prefix(v)`` on
    ``source`` matches sources under the folder or URL path ``v`` (or equal to it).
    """
    out: list[Match] = []
    for key, value in (filters or {}).items():
        if not isinstance(key, str) or not key:
            raise BadRequestError(f"filter key {key!r} must be a non-empty string")
        if isinstance(value, Prefix):
            out.append(_prefix_match(key, value.value))
        elif isinstance(value, str | int):  # bool is an int
            out.append(Match(key, (value,)))
        elif isinstance(value, list | tuple | set | frozenset):
            out.append(Match(key, _any_values(key, value)))
        else:
            raise BadRequestError(f"filter {key}={value!r}: use a string, an integer, a boolean, a list or Prefix")
    return out


def required_conditions(filters: Filters | None) -> list[Match]:
    """conditions() for a delete: at least one, so a forgotten filter never empties the whole index."""
    must = conditions(filters)
    if not must:
        raise BadRequestError("a delete needs at least one filter (to drop the whole index, ingest with --recreate)")
    return must


def _prefix_match(key: str, prefix: str) -> Match:
    if key != "source":
        raise BadRequestError(f"prefix filters work on 'source' only, not {key!r}")
    if not prefix:
        raise BadRequestError("the source prefix is empty")
    # "…/serve" means the folder "…/serve/" or a source that is exactly "…/serve".
    values = (prefix,) if prefix.endswith("/") else (prefix, prefix + "/")
    return Match("source_prefixes", values)


def _any_values(key: str, values: Any) -> tuple[Scalar, ...]:
    items = tuple(values)
    # Qdrant's match-any takes strings or integers, never booleans and never a mix.
    if all(isinstance(v, str) for v in items) or all(isinstance(v, int) and not isinstance(v, bool) for v in items):
        return items
    raise BadRequestError(f"filter {key}: a list must hold only strings or only integers, got {items!r}")


def stale_points(doc_id: str, keep_hash: str | None) -> tuple[list[Match], list[Match]]:
    """(must, must_not) selecting a document's points, sparing those whose doc_hash is ``keep_hash``."""
    must = [Match("doc_id", (doc_id,))]
    return must, ([Match("doc_hash", (keep_hash,))] if keep_hash is not None else [])


def stored_document(payload: dict[str, Any]) -> StoredDocument:
    """A StoredDocument from the payload fields in DOCUMENT_FIELDS."""
    return StoredDocument(
        doc_id=str(payload["doc_id"]),
        source=str(payload.get("source", "")),
        doc_hash=str(payload.get("doc_hash", "")),
        origin=payload.get("origin"),
        tenant=_tenant(payload.get("metadata")),
    )


def _tenant(metadata: Any) -> str | None:
    tenant = metadata.get("tenant") if isinstance(metadata, dict) else None
    return None if tenant is None else str(tenant)


def check_info(stored: IndexInfo, wanted: IndexInfo, where: str) -> None:
    """Raise IndexMismatchError when the index was built with another model or dimension."""
    if stored != wanted:
        raise IndexMismatchError(
            f"the index at {where} was built with embedding model {stored.model!r} "
            f"({stored.dimension} dimensions) but the configured model is {wanted.model!r} "
            f"({wanted.dimension} dimensions): re-ingest with --recreate (or configure {stored.model!r})"
        )


def info_from_json(data: Any) -> IndexInfo | None:
    """The IndexInfo stored as JSON, or None when ``data`` is not one."""
    if not isinstance(data, dict) or "model" not in data or "dimension" not in data:
        return None
    return IndexInfo(model=str(data["model"]), dimension=int(data["dimension"]))


def check_search(vector: np.ndarray | None, text: str | None, k: int, mode: SearchMode) -> None:
    """Reject a search that cannot be run as asked, the same way on every backend."""
    if k < 1:
        raise BadRequestError(f"k must be at least 1, got {k}")
    if mode not in SEARCH_MODES:
        raise BadRequestError(f"unknown search mode {mode!r}; one of {', '.join(SEARCH_MODES)}")
    if mode != "bm25" and vector is None:
        raise BadRequestError(f"a {mode} search needs the query vector")
    if mode != "dense" and not (text or "").strip():
        raise BadRequestError(f"a {mode} search needs the query text")


def fusion_plan(k: int, fusion: Fusion | None) -> tuple[Fusion, int]:
    """The fusion settings and how many candidates each list contributes (never fewer than k)."""
    f = fusion or Fusion()
    if f.k < 1 or f.dense_weight < 0 or f.sparse_weight < 0 or f.dense_weight + f.sparse_weight <= 0:
        raise BadRequestError(f"invalid fusion settings: {f}")
    return f, max(k, f.candidates)


def empty_index(where: str) -> EmptyIndexError:
    return EmptyIndexError(f"the index at {where} is empty: run `ragline ingest` first")


def as_matrix(chunks: Sequence[Chunk], vectors: np.ndarray, dimension: int) -> np.ndarray:
    """Check the vectors fit the chunks and the index; return them as a float32 matrix."""
    matrix = np.asarray(vectors, dtype=np.float32)
    if matrix.ndim == 1 and len(chunks) == 1:
        matrix = matrix.reshape(1, -1)
    if matrix.ndim != 2 or matrix.shape[0] != len(chunks):
        raise StoreError(f"got {len(chunks)} chunks but vectors of shape {matrix.shape}")
    if matrix.shape[1] != dimension:
        raise IndexMismatchError(f"vectors have {matrix.shape[1]} dimensions, the index has {dimension}")
    return matrix


def as_query(vector: np.ndarray, dimension: int | None) -> list[float]:
    """A query vector as a plain list, checked against the index's dimension."""
    query = np.asarray(vector, dtype=np.float32).reshape(-1)
    if dimension is not None and query.shape[0] != dimension:
        raise IndexMismatchError(
            f"the query vector has {query.shape[0]} dimensions, the index has {dimension}: "
            "query with the embedding model the index was built with"
        )
    return list(query.tolist())
