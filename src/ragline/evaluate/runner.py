"""Run retrieval methods over a question set and score them.

A method is written ``MODE[+STAGE...][@key=value...]``: ``dense``, ``bm25``, ``hybrid``; stages are
rerankers (``title``, ``sentences:0.5``, ``cross-encoder``...) or ``rerank`` for the configured chain
(chosen by the index when ``retrieval.rerank`` is unset); each ``@`` overrides another retrieval setting,
e.g. ``hybrid@dense_weight=2@candidates=100`` (no commas, so a comma-separated list of methods stays
unambiguous). ``default`` is the configured retrieval as it is, and ``default@key=value`` the same with one
setting changed (``default@max_per_page=none``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from statistics import median
from typing import Any

import numpy as np
from pydantic import ValidationError

from ragline.config import RetrievalSettings
from ragline.embed.base import Embedder, WrappedEmbedder
from ragline.errors import BadRequestError, ConfigError
from ragline.evaluate import metrics as m
from ragline.evaluate.datasets import QuestionSet
from ragline.rerank import Reranker, make_rerankers
from ragline.retrieve import MAX_DEPTH, Retriever
from ragline.store.base import SEARCH_MODES, VectorStore

log = logging.getLogger(__name__)

DEFAULT_KS = (1, 5, 10, 13)
DEFAULT_METHODS = ("dense", "bm25", "hybrid", "hybrid+rerank")


@dataclass(slots=True)
class Method:
    label: str
    settings: RetrievalSettings


def parse_method(spec: str, base: RetrievalSettings) -> Method:
    """A method spec (see the module docstring) applied on top of ``base``."""
    if spec.strip() == "default":
        return Method("default", base)
    body, *overrides = spec.strip().split("@")
    update: dict[str, Any] = {} if body.strip() == "default" else _search_and_stages(spec, body, base)
    for pair in filter(None, (p.strip() for p in overrides)):
        key, sep, value = pair.partition("=")
        if not sep or key not in RetrievalSettings.model_fields:
            raise BadRequestError(f"method {spec!r}: {pair!r} is not a retrieval setting=value")
        update[key] = None if value.lower() in ("none", "null", "") else value
    try:
        settings = RetrievalSettings.model_validate({**base.model_dump(), **update})
    except ValidationError as e:
        raise BadRequestError(f"method {spec!r}: {e.errors()[0]['loc']}: {e.errors()[0]['msg']}") from e
    return Method(spec.strip(), settings)


def _search_and_stages(spec: str, body: str, base: RetrievalSettings) -> dict[str, Any]:
    mode, *stages = [p.strip() for p in body.split("+")]
    if mode not in SEARCH_MODES:
        raise BadRequestError(f"method {spec!r}: starts with one of default, {', '.join(SEARCH_MODES)}")
    rerank: list[str] = []
    chosen_by_index = False
    for stage in stages:
        if stage == "rerank":
            if base.rerank is not None:
                rerank += base.rerank
            elif base.rerank_model:
                rerank.append("cross-encoder")
            else:
                chosen_by_index = True
        elif stage:
            rerank.append(stage)
    return {"mode": mode, "rerank": None if chosen_by_index and not rerank else rerank}


class QueryCache(WrappedEmbedder):
    """An Embedder that remembers query vectors, so methods compared on one question set embed each
    question once."""

    def __init__(self, embedder: Embedder) -> None:
        super().__init__(embedder)
        self._query = lru_cache(maxsize=20_000)(embedder.embed_query)

    def embed_query(self, text: str) -> np.ndarray:
        return np.asarray(self._query(text))


@dataclass(slots=True)
class MethodResult:
    method: str
    settings: dict[str, Any]
    metrics: dict[str, float]
    latency_ms: dict[str, float]
    per_question: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self, details: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "method": self.method,
            "settings": self.settings,
            "metrics": self.metrics,
            "latency_ms": self.latency_ms,
        }
        if details:
            out["per_question"] = self.per_question
        return out


def depth_for(qset: QuestionSet, ks: Sequence[int]) -> int:
    """How many chunks to rank: enough for the largest k (documents may span several chunks)."""
    top = max([*ks, 10])
    return min(MAX_DEPTH, top if qset.unit == "chunks" else 2 * top)


def score(qset: QuestionSet, rankings: Sequence[Sequence[str]], ks: Sequence[int]) -> dict[str, float]:
    """Mean metrics over the questions, given each question's ranked chunk keys."""
    out: dict[str, list[float]] = {}

    def add(name: str, value: float) -> None:
        out.setdefault(name, []).append(value)

    for q, chunk_keys in zip(qset.questions, rankings, strict=True):
        docs = m.documents(chunk_keys)
        ranked = list(chunk_keys) if qset.unit == "chunks" else docs
        for k in ks:
            add(f"hit@{k}", m.hit_at_k(ranked, q.relevant, k))
        add("mrr", m.reciprocal_rank(ranked, q.relevant))
        add("ndcg@10", m.ndcg_at_k(docs, q.relevant, 10))
        for k in ks:
            add(f"recall@{k}", m.recall_at_k(ranked, q.relevant, k))
    return {name: round(m.mean(values), 4) for name, values in out.items()}


WARM_UP_QUESTIONS = 3  # ranked, untimed, before a method's timed pass


def run_method(
    method: Method,
    qset: QuestionSet,
    store: VectorStore,
    embedder: Embedder,
    ks: Sequence[int],
    rerankers: Callable[[RetrievalSettings], list[Reranker]] | None = None,
) -> MethodResult:
    """Rank every question with one method and score the rankings."""
    stages = rerankers(method.settings) if rerankers and method.settings.rerank is not None else None
    retriever = Retriever(store, embedder, method.settings, rerankers=stages)
    retriever.warm_up()
    depth = depth_for(qset, ks)
    for q in qset.questions[:WARM_UP_QUESTIONS]:  # untimed: the method's first searches pay its set-up
        retriever.rank(q.text, depth)
    rankings: list[list[str]] = []
    per_question: list[dict[str, Any]] = []
    took: list[float] = []
    for q in qset.questions:
        t0 = time.perf_counter()
        hits = retriever.rank(q.text, depth)
        took.append((time.perf_counter() - t0) * 1000)
        keys = [qset.key(h.chunk) for h in hits]
        rankings.append(keys)
        ranked = keys if qset.unit == "chunks" else m.documents(keys)
        first = next((i for i, key in enumerate(ranked, 1) if q.relevant.get(key, 0) > 0), None)
        per_question.append({"qid": q.qid, "question": q.text, "first_relevant": first, "top": ranked[:5]})
    lat = sorted(took)
    latency = {"mean": round(m.mean(took), 1), "p50": round(lat[len(lat) // 2], 1) if lat else 0.0}
    settings = method.settings.model_dump(exclude={"k", "score_threshold", "merge_adjacent"})
    if method.settings.rerank is None:  # as the index chose them
        settings["rerank"] = [r.name for r in retriever.rerankers]
    return MethodResult(method.label, settings, score(qset, rankings, ks), latency, per_question)


class RerankerPool:
    """The reranker stages of one method's run, one instance per spec."""

    def __init__(self, embedder: Embedder, device: str = "cpu") -> None:
        self.embedder = embedder
        self.device = device
        self._made: dict[tuple[str, str | None], Reranker] = {}

    def __call__(self, settings: RetrievalSettings) -> list[Reranker]:
        out = []
        for spec in settings.rerank or []:
            key = (spec, settings.rerank_model if spec.startswith("cross-encoder") else None)
            if key not in self._made:
                one = settings.model_copy(update={"rerank": [spec]})
                self._made[key] = make_rerankers(one, self.embedder, self.device)[0]
            out.append(self._made[key])
        return out


def evaluate(
    qset: QuestionSet,
    methods: Sequence[str],
    store: VectorStore,
    embedder: Embedder,
    base: RetrievalSettings,
    ks: Sequence[int] = DEFAULT_KS,
    progress: Callable[[MethodResult], None] | None = None,
) -> dict[str, Any]:
    """Every method on every question: the report as JSON-ready data."""
    if not qset.questions:
        raise ConfigError(f"{qset.name}: no questions to evaluate")
    ks = sorted(set(ks))
    cached = QueryCache(embedder)
    parsed = [parse_method(s, base) for s in methods]  # fail on a bad spec before any work
    # Every question is embedded once, before any method is timed: each method's ms/question is then its
    # search alone, the same for the first method as for the last (which would otherwise find the vectors
    # cached). The embedding's own time is reported once.
    embedder.warm_up()
    embed_ms = []
    for q in qset.questions:
        t0 = time.perf_counter()
        cached.embed_query(q.text)
        embed_ms.append((time.perf_counter() - t0) * 1000)
    results = []
    for method in parsed:
        t0 = time.perf_counter()
        # Rerankers of their own (with empty caches of embedded titles and sentences) for each method: a
        # method never finds the texts an earlier one embedded, so none is timed with another's work done.
        result = run_method(method, qset, store, cached, ks, RerankerPool(cached))
        log.info("%s: %s in %.0f s", method.label, result.metrics, time.perf_counter() - t0)
        results.append(result)
        if progress:
            progress(result)
    return {
        "dataset": qset.name,
        "unit": qset.unit,
        "questions": len(qset.questions),
        "notes": qset.notes,
        "ks": ks,
        "query_embedding_ms": {"mean": round(m.mean(embed_ms), 1), "p50": round(median(embed_ms), 1)},
        "methods": [r.to_json() for r in results],
    }
