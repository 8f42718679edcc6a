"""Retrieval metrics on ranked lists of document keys (pure functions, checked by hand in the tests).

A ranking is the list of document keys of the retrieved chunks, best first; the same key may repeat
(several chunks of one page). Document-level metrics first collapse it with :func:`documents`, which
keeps each document at the rank of its best chunk (its score is the max over its chunks).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence


def documents(ranked: Sequence[str]) -> list[str]:
    """Distinct keys in order of first appearance: each document at its best chunk's rank."""
    return list(dict.fromkeys(ranked))


def hit_at_k(ranked: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    """1.0 when any of the first ``k`` items is relevant, else 0.0."""
    return 1.0 if any(relevant.get(key, 0) > 0 for key in ranked[:k]) else 0.0


def recall_at_k(ranked: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    """Share of the relevant documents found in the first ``k`` items."""
    wanted = {key for key, grade in relevant.items() if grade > 0}
    if not wanted:
        return 0.0
    return len(wanted.intersection(ranked[:k])) / len(wanted)


def reciprocal_rank(ranked: Sequence[str], relevant: Mapping[str, int], k: int | None = None) -> float:
    """1 / rank of the first relevant item (0.0 when none is in the first ``k``)."""
    for rank, key in enumerate(ranked[:k] if k else ranked, start=1):
        if relevant.get(key, 0) > 0:
            return 1.0 / rank
    return 0.0


def ndcg_at_k(ranked: Sequence[str], relevant: Mapping[str, int], k: int = 10) -> float:
    """Normalised discounted cumulative gain with gain = grade and discount log2(rank + 1), as in
    BEIR (trec_eval). Repeated keys count once, at their first rank."""
    dcg = sum(max(relevant.get(key, 0), 0) / math.log2(rank + 1) for rank, key in enumerate(documents(ranked)[:k], 1))
    ideal = sorted((g for g in relevant.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(rank + 1) for rank, g in enumerate(ideal, start=1))
    return dcg / idcg if idcg else 0.0


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0
