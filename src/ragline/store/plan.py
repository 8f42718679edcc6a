"""Search plans: a search request (vector, text, mode, fusion, filters, k) checked and reduced to the ranked
lists to run and how to combine them, the same for every engine.

An engine only turns a :class:`Leg` into its own nearest-neighbour query; the store settles each list (ties by
point id) and fuses hybrid lists here (:func:`fuse`), so dense, BM25 and hybrid searches mean the same on every
backend and give the same hits in every process.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ragline.errors import BadRequestError, IndexMismatchError
from ragline.store.base import SEARCH_MODES, Filters, Fusion, SearchMode
from ragline.store.filters import DENSE, Match, conditions
from ragline.store.sparse import SPARSE, SparseVector, query_vector


@dataclass(frozen=True, slots=True)
class Leg:
    """One ranked list: the ``limit`` points nearest to ``vector`` in the named vector ``using``."""

    using: str  # DENSE or SPARSE
    vector: list[float] | SparseVector
    limit: int
    score_threshold: float | None = None

    @property
    def dense(self) -> bool:
        """Dense legs are rescored with the original vectors when the index is quantised."""
        return self.using == DENSE


@dataclass(frozen=True, slots=True)
class SearchPlan:
    """What a search runs: one leg ranked as is, or several fused by weighted RRF (``weights`` set).

    No legs means nothing can match (a BM25 query made only of stop words).
    """

    limit: int
    where: list[Match]
    legs: tuple[Leg, ...]
    weights: tuple[float, ...] | None = None
    rrf_k: int = 60

    @property
    def fused(self) -> bool:
        return self.weights is not None


def plan_search(
    vector: np.ndarray | None,
    k: int,
    *,
    dimension: int | None,
    filters: Filters | None,
    score_threshold: float | None,
    text: str | None,
    mode: SearchMode,
    fusion: Fusion | None,
) -> SearchPlan:
    """Check a search request and plan it. The threshold bounds the only leg, or the dense leg of a hybrid."""
    check_search(vector, text, k, mode)
    where = conditions(filters)
    if mode == "bm25":
        words = query_vector(text or "")
        return SearchPlan(k, where, (Leg(SPARSE, words, k, score_threshold),) if words else ())
    assert vector is not None  # check_search
    dense = as_query(vector, dimension)
    if mode == "dense":
        return SearchPlan(k, where, (Leg(DENSE, dense, k, score_threshold),))
    f, candidates = fusion_plan(k, fusion)
    legs, weights = [Leg(DENSE, dense, candidates, score_threshold)], [f.dense_weight]
    words = query_vector(text or "")
    if words:  # only stop words: the dense list alone
        legs.append(Leg(SPARSE, words, candidates))
        weights.append(f.sparse_weight)
    return SearchPlan(k, where, tuple(legs), tuple(weights), f.k)


# Points asked for beyond a list's length, so that points tied at its last place are chosen by key, not by the
# engine, which returns tied points in an order that can change from one call to the next.
TIE_MARGIN = 8

Found = list[tuple[str, dict[str, Any], float]]  # (point id, payload, score), best first


def leg_plan(plan: SearchPlan, leg: Leg) -> SearchPlan:
    """One leg of ``plan`` on its own, asking for ``TIE_MARGIN`` more points than it keeps."""
    return SearchPlan(leg.limit + TIE_MARGIN, plan.where, (replace(leg, limit=leg.limit + TIE_MARGIN),))


def settle(found: Found, limit: int) -> Found:
    """The first ``limit`` of ``found``, best first and ties by point id: the same in every process."""
    return sorted(found, key=lambda row: (-row[2], row[0]))[:limit]


def fuse(lists: Sequence[Found], weights: Sequence[float], rrf_k: int) -> Found:
    """Weighted reciprocal rank fusion of ranked lists, as Qdrant computes it: each list gives each of its points
    ``1 / (rank / weight + rrf_k - 1)`` (rank from 1; nothing with weight 0)."""
    scores: dict[str, float] = {}
    payloads: dict[str, dict[str, Any]] = {}
    for rows, weight in zip(lists, weights, strict=True):
        for rank, (point, payload, _score) in enumerate(rows, start=1):
            payloads.setdefault(point, payload)
            share = 1.0 / (rank / weight + rrf_k - 1) if weight > 0 else 0.0
            scores[point] = scores.get(point, 0.0) + share
    return [(point, payloads[point], score) for point, score in scores.items()]


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


def as_query(vector: np.ndarray, dimension: int | None) -> list[float]:
    """A query vector as a plain list, checked against the index's dimension."""
    query = np.asarray(vector, dtype=np.float32).reshape(-1)
    if dimension is not None and query.shape[0] != dimension:
        raise IndexMismatchError(
            f"the query vector has {query.shape[0]} dimensions, the index has {dimension}: "
            "query with the embedding model the index was built with"
        )
    return list(query.tolist())
