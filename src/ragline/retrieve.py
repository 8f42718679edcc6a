"""Retrieval: search the index (dense, BM25 or hybrid, with filters), rerank, shape the hits.

The stages, each configured in ``RetrievalSettings`` and measured by ``ragline eval retrieval``:
search (dense and BM25 lists fused by weighted reciprocal rank fusion, ties by point id) -> rerank stages over the first
``rerank_depth`` candidates -> collapse near-duplicates -> optional per-page cap -> top k -> merge
adjacent chunks of one section into one block.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ragline.config import RetrievalSettings
from ragline.embed.base import Embedder
from ragline.errors import BadRequestError
from ragline.limits import check_k
from ragline.observability.tracing import span
from ragline.records import Chunk, Hit
from ragline.rerank import Reranker, auto_stages, make_rerankers
from ragline.shaping import join_chunks, merge_adjacent, shape
from ragline.store.base import Fusion, Prefix, VectorStore, scoped

log = logging.getLogger(__name__)

MAX_DEPTH = 1000  # rankings for evaluation go deeper than any prompt
_SPARE = 10  # extra candidates fetched so that shaping can drop some and still fill k


def parse_filters(pairs: Sequence[str]) -> dict[str, Any]:
    """``key=value`` strings from a command line into filters; ``source=`` means a source prefix."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise BadRequestError(f"filter {pair!r} is not key=value")
        out[key.strip()] = value.strip()
    return normalise_filters(out)


def normalise_filters(filters: Mapping[str, Any] | None) -> dict[str, Any]:
    """Known shorthands: ``source`` (or ``source_prefix``) matches by prefix; ``type`` is the document kind;
    other keys that are not payload fields address ``metadata.<key>``."""
    out: dict[str, Any] = {}
    for key, value in (filters or {}).items():
        _check_filter(key, value)
        if key in ("source", "source_prefix"):
            out["source"] = value if isinstance(value, Prefix) else Prefix(str(value))
        elif key in ("type", "kind", "doc_type"):
            out["kind"] = value
        elif key in ("doc_id", "anchor", "section", "title") or key.startswith("metadata."):
            out[key] = value
        else:
            out[f"metadata.{key}"] = value
    return out


_FILTER_KEY = re.compile(r"[A-Za-z_][\w-]{0,63}(?:\.[A-Za-z_][\w-]{0,63}){0,3}")
_INT64 = 2**63


def _check_filter(key: Any, value: Any) -> None:
    """A filter the index can run, or a BadRequestError saying what is wrong with it."""
    if not isinstance(key, str) or not _FILTER_KEY.fullmatch(key):
        raise BadRequestError(
            f"bad filter key {str(key)[:80]!r}: use a field name (letters, digits, _ or -), "
            "optionally dotted, e.g. team or metadata.team"
        )
    values = value if isinstance(value, list | tuple) else [value]
    for v in values:
        if isinstance(v, bool) or v is None or isinstance(v, str | Prefix):
            continue
        if isinstance(v, int) and -_INT64 <= v < _INT64:
            continue
        shown = str(v)[:40]
        raise BadRequestError(
            f"bad value for filter {key!r}: {shown} (a string, a boolean or a 64-bit integer, or a list of them)"
        )


class Retriever:
    def __init__(
        self,
        store: VectorStore,
        embedder: Embedder,
        settings: RetrievalSettings,
        rerankers: list[Reranker] | None = None,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.settings = settings
        self._rerankers = rerankers

    @property
    def rerankers(self) -> list[Reranker]:
        """The rerank stages; an unset ``retrieval.rerank`` is decided here, by the open index's shape."""
        if self._rerankers is None:
            stages = self.settings.rerank
            if stages is None:
                stages = auto_stages(self.store.count(), self.store.count({"chunk_index": 0}))
                log.info("rerank stages for this index: %s", ", ".join(stages) or "none")
            device = str(getattr(self.embedder, "device", "cpu"))  # a cross-encoder runs where the embedder does
            self._rerankers = make_rerankers(self.settings, self.embedder, device, stages)
        return self._rerankers

    def warm_up(self) -> None:
        self.embedder.warm_up()
        for r in self.rerankers:
            r.warm_up()

    def search(
        self,
        query: str,
        k: int | None = None,
        *,
        filters: Mapping[str, Any] | None = None,
        score_threshold: float | None = None,
        tenant: str | None = None,
    ) -> list[Hit]:
        """Top-k hits for ``query``. With ``tenant``, only that tenant's chunks can match, whatever
        ``filters`` say: the tenant condition is applied last and overrides any ``tenant`` filter.

        With ``merge_adjacent``, chunks of one section that touch come back as one hit (a block), and
        k counts blocks: the next-ranked chunks fill the places merging freed."""
        k = self.settings.k if k is None else k
        check_k(k)
        if not self.settings.merge_adjacent:
            return self.rank(query, k, filters=filters, score_threshold=score_threshold, tenant=tenant)
        ranked = self.rank(
            query, min(3 * k, MAX_DEPTH), filters=filters, score_threshold=score_threshold, tenant=tenant
        )
        with span("merge"):
            n = k
            blocks = merge_adjacent(ranked[:n])
            while len(blocks) < k and n < len(ranked):
                n += k - len(blocks)
                blocks = merge_adjacent(ranked[:n])
        return self.extend(blocks[:k], filters=filters, tenant=tenant)

    def extend(
        self, blocks: list[Hit], *, filters: Mapping[str, Any] | None = None, tenant: str | None = None
    ) -> list[Hit]:
        """The first blocks with the next chunks of their page joined on (``retrieval.extend_next`` says how
        many onto each): a section's introduction often ranks first while its example sits in the chunk after."""
        conditions = scoped(normalise_filters(filters), tenant)
        out = list(blocks)
        for i, count in enumerate(self.settings.extend_next[: len(out)]):
            for _ in range(count):
                chunk = out[i].chunk
                pieces = len(chunk.metadata.get("chunk_ids", [chunk.id]))
                where = {**conditions, "doc_id": chunk.doc_id, "chunk_index": chunk.index + pieces}
                with span("extend"):
                    found = next(iter(self.store.points(where)), None)
                if found is None:
                    break
                following = Chunk.from_payload(found[1])
                same_page = following.doc_id == chunk.doc_id and following.doc_hash == chunk.doc_hash
                if not same_page or any(following.doc_id == b.chunk.doc_id for b in out[i + 1 :]):
                    break
                out[i] = Hit(join_chunks(chunk, following), out[i].score)
        return out

    def rank(
        self,
        query: str,
        depth: int,
        *,
        filters: Mapping[str, Any] | None = None,
        score_threshold: float | None = None,
        tenant: str | None = None,
    ) -> list[Hit]:
        """The first ``depth`` chunks, searched, reranked and shaped but not merged (what evaluation scores)."""
        query = (query or "").strip()
        if not query:
            raise BadRequestError("the question is empty")
        if not 1 <= depth <= MAX_DEPTH:
            raise BadRequestError(f"depth must be between 1 and {MAX_DEPTH}, got {depth}")
        s = self.settings
        conditions = scoped(normalise_filters(filters), tenant)
        vector = None
        if s.mode != "bm25" or self.rerankers:
            with span("embed"):
                vector = self.embedder.embed_query(query)
        threshold = s.score_threshold if score_threshold is None else score_threshold
        pool = depth + _SPARE if s.dedupe or s.max_per_page else depth
        if s.max_per_page:  # the cap needs enough distinct pages behind the first ones to fill the list
            pool = max(pool, s.pool)
        if self.rerankers:
            pool = max(pool, s.rerank_depth)
        with span("search", mode=s.mode, limit=pool):
            hits = self.store.search(
                vector if s.mode != "bm25" else None,
                pool,
                filters=conditions,
                score_threshold=threshold,
                text=query,
                mode=s.mode,
                fusion=Fusion(s.dense_weight, s.sparse_weight, s.rrf_k, s.candidates),
            )
        hits = self._rerank(query, hits, vector)
        with span("shape"):
            return shape(hits, depth, dedupe=s.dedupe, max_per_page=s.max_per_page)

    def _rerank(self, query: str, hits: list[Hit], vector: np.ndarray | None) -> list[Hit]:
        if not self.rerankers or not hits:
            return hits
        head, tail = hits[: self.settings.rerank_depth], hits[self.settings.rerank_depth :]
        with span("rerank", stages=",".join(r.name for r in self.rerankers), candidates=len(head)):
            for stage in self.rerankers:
                head = stage.rerank(query, head, vector)
        return head + tail
