"""Payload, filter and index-identity helpers shared by every vector-store backend.

Both backends store the same payload (the chunk's own, plus the derived ``source_prefixes``) and reduce a
``Filters`` mapping to the same few :class:`Match` conditions, which each backend turns into its engine's
classes. Keeping the semantics here is what makes the backends answer alike (the contract tests check it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import numpy as np

from ragline.errors import BadRequestError, EmptyIndexError, IndexMismatchError, StoreError
from ragline.records import Chunk
from ragline.store.base import Filters, IndexInfo, Prefix, StoredDocument

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

F = TypeVar("F")  # an engine's filter class
C = TypeVar("C")  # an engine's condition class


@dataclass(frozen=True, slots=True)
class FilterBuilder(Generic[F, C]):
    """Turns :class:`Match` lists into one engine's filter, given how that engine spells its parts."""

    make: Callable[..., F]  # the filter, from must= and must_not= lists of conditions (or None)
    one: Callable[[str, Scalar], C]  # the field holds this value
    any_of: Callable[[str, list[Scalar]], C]  # the field holds one of these values

    def condition(self, m: Match) -> C:
        return self.one(m.key, m.values[0]) if len(m.values) == 1 else self.any_of(m.key, list(m.values))

    def build(self, must: Sequence[Match], must_not: Sequence[Match] = ()) -> F:
        """Every condition of ``must`` holds and none of ``must_not``."""
        return self.make(
            must=[self.condition(m) for m in must] or None,
            must_not=[self.condition(m) for m in must_not] or None,
        )

    def optional(self, must: Sequence[Match]) -> F | None:
        """build(), or None (no filter at all) when there are no conditions."""
        return self.build(must) if must else None


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
