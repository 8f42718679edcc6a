"""The sources an index holds, for one tenant: what the web page offers as filters (``GET /sources``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ragline.store.base import VectorStore, scoped

MAX_SOURCES = 5000  # the most any listing returns, whatever it is asked for


@dataclass(frozen=True, slots=True)
class Source:
    source: str  # the document's URL or path, as the `source` filter matches it
    title: str

    def to_json(self) -> dict[str, str]:
        return {"source": self.source, "title": self.title}


@dataclass(frozen=True, slots=True)
class SourceList:
    sources: list[Source]  # sorted by source, at most the limit
    total: int  # documents the tenant has, listed or not

    @property
    def truncated(self) -> bool:
        return self.total > len(self.sources)

    def to_json(self) -> dict[str, Any]:
        return {"sources": [s.to_json() for s in self.sources], "total": self.total, "truncated": self.truncated}


def list_sources(store: VectorStore, tenant: str | None, limit: int) -> SourceList:
    """The first ``limit`` sources (sorted) of ``tenant``'s documents; every document's when ``tenant`` is None.

    Reads each document's first chunk only, and the tenant condition is applied by the engine, so another
    tenant's documents are never read.
    """
    limit = max(1, min(limit, MAX_SOURCES))
    titles: dict[str, str] = {}
    for _, payload in store.points(scoped({"chunk_index": 0}, tenant)):
        source = str(payload.get("source", ""))
        if source:
            # Two versions of one document may sit side by side while it is re-ingested: one entry.
            titles.setdefault(source, str(payload.get("title") or ""))
    listed = sorted(titles)[:limit]
    return SourceList([Source(s, titles[s]) for s in listed], len(titles))
