"""The crash-safe writer: changed documents go into the index so that a crash never loses or duplicates.

A document is identified by its source (``doc_id``) and versioned by its content hash. A changed
document is written new-version-first and committed by its first chunk (``chunk_index`` 0), which is
always written after every other chunk of that version; then the document's points with any other
hash are deleted. ``IndexState`` (``ingest.changes``) reads documents from first chunks only, so:

- a crash before the first chunk is written leaves a version the next run does not see: the
  document is still new or changed, and rewriting it (same deterministic ids) then deleting other
  hashes removes the partial version;
- a crash after the first chunk but before the deletion leaves two hashes for the document: the
  next run treats it as changed and finishes the job.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

from ragline.embed.base import Embedder
from ragline.records import Chunk
from ragline.store.base import VectorStore

log = logging.getLogger(__name__)


def commit_order(chunks: Sequence[Chunk]) -> list[Chunk]:
    """Chunks in the order that makes a crash safe: every document's first chunk after the rest."""
    return [c for c in chunks if c.index != 0] + [c for c in chunks if c.index == 0]


FIRST_BATCH = 32  # chunks in a background writer's first batch (see IndexWriter.start)


class IndexWriter:
    """Embeds and writes changed documents in batches; each document is committed within one batch.

    With ``background``, the work leaves the caller's thread, which chunks the next documents meanwhile: one
    thread embeds a batch while another writes the batch before it to the store, so the embedding calls never
    wait for a write. Only for embedders whose calls may overlap the caller's token counting. At most one
    batch is being embedded and one waits to be written; the store is touched by one thread at a time, in
    batch order, either way.
    """

    def __init__(
        self, store: VectorStore, embedder: Embedder, batch_chunks: int = 256, *, background: bool = False
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.batch_chunks = batch_chunks
        self._pending: list[Chunk] = []
        self._finish: list[tuple[str, str]] = []  # (doc_id, hash to keep) once its chunks are in
        self._embedding = ThreadPoolExecutor(1, thread_name_prefix="ragline-embed-batch") if background else None
        self._storing = ThreadPoolExecutor(1, thread_name_prefix="ragline-write") if background else None
        self._embedded: Future[Future[int]] | None = None  # the batch being embedded; then its write
        self._written: Future[int] | None = None  # the write of the batch before it
        self._abandoned = False
        self._first_batch = 0  # chunks that make the first batch, when start() asked for a small one
        self.written = 0

    def start(self) -> None:
        """In the background: load the embedding model now, while the caller parses and chunks the first
        documents, and hand over a small first batch, so that no core waits for the first full one."""
        if self._embedding is not None:
            self._embedding.submit(self.embedder.warm_up)
            self._first_batch = min(self.batch_chunks, FIRST_BATCH)

    def add(self, doc_id: str, doc_hash: str, chunks: Sequence[Chunk]) -> int:
        """Queue a changed document; returns chunks whose writing finished during this call."""
        self._pending.extend(chunks)
        self._finish.append((doc_id, doc_hash))
        if len(self._pending) >= (self._first_batch or self.batch_chunks):
            self._first_batch = 0
            return self._submit()
        return 0

    def flush(self) -> int:
        """Write everything queued and wait for it; returns chunks whose writing finished during this call."""
        done = self._submit() if self._finish else 0
        done += self._collect()  # the last batch's write is now queued
        return done + self._collect()

    def close(self) -> None:
        """Stop the threads; work still queued (after an error) is dropped, not written.

        A write that fails drops the ones queued behind it too, so nothing lands after a failure.
        """
        self._abandoned = True
        for pool in (self._embedding, self._storing):
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)

    def _submit(self) -> int:
        batch, finish = self._pending, self._finish
        self._pending, self._finish = [], []
        if self._embedding is None:
            return self._store(*self._embed(batch), finish)
        done = self._collect()  # backpressure: the previous batch's vectors first, the write before it done
        self._embedded = self._embedding.submit(self._embed_then_queue, batch, finish)
        return done

    def _collect(self) -> int:
        """Wait for the earlier write to finish and move the batch being embedded to its place; its count."""
        done = 0
        if self._written is not None:
            future, self._written = self._written, None
            done = future.result()  # re-raises what went wrong in the writer
        if self._embedded is not None:
            future2, self._embedded = self._embedded, None
            self._written = future2.result()  # re-raises what went wrong while embedding
        return done

    def _embed_then_queue(self, batch: list[Chunk], finish: list[tuple[str, str]]) -> Future[int]:
        ordered, vectors = self._embed(batch)
        assert self._storing is not None
        return self._storing.submit(self._store_unless_abandoned, ordered, vectors, finish)

    def _store_unless_abandoned(
        self, ordered: list[Chunk], vectors: np.ndarray | None, finish: list[tuple[str, str]]
    ) -> int:
        if self._abandoned:
            return 0
        try:
            return self._store(ordered, vectors, finish)
        except BaseException:
            self._abandoned = True  # the writes queued behind this one are dropped
            raise

    def _embed(self, batch: list[Chunk]) -> tuple[list[Chunk], np.ndarray | None]:
        if not batch:
            return batch, None
        ordered = commit_order(batch)
        return ordered, self.embedder.embed_documents([c.embedding_text() for c in ordered])

    def _store(self, ordered: list[Chunk], vectors: np.ndarray | None, finish: list[tuple[str, str]]) -> int:
        if ordered and vectors is not None:
            self.store.upsert(ordered, vectors)
        for doc_id, doc_hash in finish:
            self.store.delete_document(doc_id, keep_hash=doc_hash)
        self.written += len(ordered)
        if ordered:
            log.info("indexed %d chunks so far", self.written)
        return len(ordered)


class StreamCommitter:
    """Commits documents whose chunks reach the index in pieces and out of order (parallel writers).

    Writers store every chunk but the first and report counts; the first chunk is held here and
    written once the rest of its version is in, then the document's other versions are deleted.
    """

    def __init__(self, store: VectorStore) -> None:
        self.store = store
        self._expected: dict[tuple[str, str], int] = {}
        # Chunk positions, not counts: a retried task may deliver a chunk twice, and one written twice
        # (same id) must not stand in for one never written.
        self._written: dict[tuple[str, str], set[int]] = defaultdict(set)
        self._first: dict[tuple[str, str], tuple[Chunk, np.ndarray]] = {}
        self.committed = 0  # documents committed
        self.chunks_written = 0  # first chunks written here (the writers count the rest)

    def expect(self, doc_id: str, doc_hash: str, n_chunks: int) -> None:
        """A changed document version with ``n_chunks`` chunks is on its way."""
        key = (doc_id, doc_hash)
        self._expected[key] = n_chunks
        self._try_commit(key)

    def wrote(self, doc_id: str, doc_hash: str, indexes: Iterable[int]) -> None:
        """These chunks of this version (never its first) are in the index."""
        key = (doc_id, doc_hash)
        self._written[key].update(indexes)
        self._try_commit(key)

    def hold_first(self, chunk: Chunk, vector: np.ndarray) -> None:
        """The version's first chunk, written when the rest is in."""
        key = (chunk.doc_id, chunk.doc_hash)
        self._first[key] = (chunk, vector)
        self._try_commit(key)

    def discard(self, doc_id: str) -> None:
        """Forget every version of a document (the caller rewrites it another way)."""
        for key in [k for k in (*self._expected, *self._first) if k[0] == doc_id]:
            self._expected.pop(key, None)
            self._first.pop(key, None)
            self._written.pop(key, None)

    @property
    def pending(self) -> int:
        """Versions announced but not committed (0 once a run has streamed everything)."""
        return len(self._expected)

    def _try_commit(self, key: tuple[str, str]) -> None:
        expected = self._expected.get(key)
        if expected is None:
            return
        has_first = key in self._first
        if len(self._written.get(key, ())) + int(has_first) < expected or (expected and not has_first):
            return
        if has_first:
            chunk, vector = self._first.pop(key)
            self.store.upsert([chunk], vector.reshape(1, -1))
            self.chunks_written += 1
        self.store.delete_document(key[0], keep_hash=key[1])
        del self._expected[key]
        self._written.pop(key, None)
        self.committed += 1
