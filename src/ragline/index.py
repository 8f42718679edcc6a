"""Incremental indexing: decide what changed, then write it so a crash never loses or duplicates.

A document is identified by its source (``doc_id``) and versioned by its content hash. Writes of a
changed document go new-chunks-first: upsert the new points (deterministic ids), then delete the
document's points with any other hash. A crash between the two leaves both versions; the next run
sees two hashes for the document, treats it as changed and finishes the job.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from ragline.embed.base import Embedder
from ragline.records import Chunk
from ragline.store.base import StoredDocument, VectorStore


class Change(StrEnum):
    ADDED = "added"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


@dataclass(slots=True)
class Skipped:
    source: str
    reason: str

    def to_json(self) -> dict[str, str]:
        return {"source": self.source, "reason": self.reason}


@dataclass(slots=True)
class IndexReport:
    documents: int = 0  # documents read and parsed in this run
    chunks: int = 0  # chunks in the index after the run
    added: int = 0  # documents new to the index
    updated: int = 0  # documents whose content changed
    deleted: int = 0  # documents gone from their folder, removed from the index
    unchanged: int = 0
    chunks_written: int = 0  # chunks embedded and upserted
    chunks_deleted: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    seconds: float = 0.0

    def count(self, change: Change) -> None:
        setattr(self, change.value, getattr(self, change.value) + 1)

    def to_json(self) -> dict[str, Any]:
        return {
            "documents": self.documents,
            "chunks": self.chunks,
            "added": self.added,
            "updated": self.updated,
            "deleted": self.deleted,
            "unchanged": self.unchanged,
            "chunks_written": self.chunks_written,
            "chunks_deleted": self.chunks_deleted,
            "skipped": [s.to_json() for s in self.skipped],
            "seconds": round(self.seconds, 3),
        }


class IndexState:
    """What the index holds, loaded once per ingest: doc_id -> stored hashes, and origins."""

    def __init__(self, stored: Iterable[StoredDocument]) -> None:
        self.hashes: dict[str, set[str]] = defaultdict(set)
        self.origin: dict[str, str | None] = {}
        self.source: dict[str, str] = {}
        for d in stored:
            self.hashes[d.doc_id].add(d.doc_hash)
            self.origin[d.doc_id] = d.origin
            self.source[d.doc_id] = d.source

    def change(self, doc_id: str, doc_hash: str) -> Change:
        held = self.hashes.get(doc_id)
        if not held:
            return Change.ADDED
        return Change.UNCHANGED if held == {doc_hash} else Change.UPDATED

    def gone(self, origins: Iterable[str], seen: set[str]) -> list[str]:
        """Documents indexed from these origins that this run did not see (nor skip)."""
        wanted = set(origins)
        return sorted(d for d, o in self.origin.items() if o in wanted and d not in seen)


class IndexWriter:
    """Embeds and writes changed documents in batches, finishing each document atomically-enough."""

    def __init__(self, store: VectorStore, embedder: Embedder, batch_chunks: int = 256) -> None:
        self.store = store
        self.embedder = embedder
        self.batch_chunks = batch_chunks
        self._pending: list[Chunk] = []
        self._finish: list[tuple[str, str]] = []  # (doc_id, hash to keep) once its chunks are in

    def add(self, doc_id: str, doc_hash: str, chunks: Sequence[Chunk]) -> int:
        """Queue a changed document; returns chunks written so far by this call's flushes."""
        self._pending.extend(chunks)
        self._finish.append((doc_id, doc_hash))
        return self.flush() if len(self._pending) >= self.batch_chunks else 0

    def flush(self) -> int:
        written = len(self._pending)
        if self._pending:
            vectors = self.embedder.embed_documents([c.embedding_text() for c in self._pending])
            self.store.upsert(self._pending, vectors)
        for doc_id, doc_hash in self._finish:
            self.store.delete_document(doc_id, keep_hash=doc_hash)
        self._pending, self._finish = [], []
        return written
