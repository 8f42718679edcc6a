"""Retrieval: embed the query, search the index with filters, return scored hits."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from ragline.config import RetrievalSettings
from ragline.embed.base import Embedder
from ragline.errors import BadRequestError
from ragline.records import Hit
from ragline.store.base import Prefix, VectorStore

log = logging.getLogger(__name__)

MAX_K = 100


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
        if key in ("source", "source_prefix"):
            out["source"] = value if isinstance(value, Prefix) else Prefix(str(value))
        elif key in ("type", "kind", "doc_type"):
            out["kind"] = value
        elif key in ("doc_id", "anchor", "section", "title") or key.startswith("metadata."):
            out[key] = value
        else:
            out[f"metadata.{key}"] = value
    return out


class Retriever:
    def __init__(self, store: VectorStore, embedder: Embedder, settings: RetrievalSettings) -> None:
        self.store = store
        self.embedder = embedder
        self.settings = settings

    def warm_up(self) -> None:
        self.embedder.warm_up()

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
        ``filters`` say: the tenant condition is applied last and overrides any ``tenant`` filter."""
        query = (query or "").strip()
        if not query:
            raise BadRequestError("the question is empty")
        k = self.settings.k if k is None else k
        if not 1 <= k <= MAX_K:
            raise BadRequestError(f"k must be between 1 and {MAX_K}, got {k}")
        conditions = normalise_filters(filters)
        if tenant is not None:
            conditions["metadata.tenant"] = tenant
        vector = self.embedder.embed_query(query)
        threshold = self.settings.score_threshold if score_threshold is None else score_threshold
        return self.store.search(vector, k, filters=conditions, score_threshold=threshold)
