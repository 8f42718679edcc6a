"""Data-parallel embedding for ingest: a batch's forward passes shared by threads, each a one-thread model call.

For a model as small as MiniLM, N single-threaded calls keep N cores busier than one call on N threads: the
intra-op threads of one call wait on each other at every layer, and on a busy machine they are rarely
scheduled together (measured here under load: ONNX int8 17 chunks per CPU-second on one thread, 14 on two;
see bench/ingest.py). Only backends whose calls may overlap get this: the ONNX backend tokenizes with a
tokenizer whose settings never change and runs one thread-safe session; sentence-transformers switches its
tokenizer's truncation on every call (counting tokens for chunking, then embedding), which fails when two
calls meet.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ragline.config import EmbeddingSettings
from ragline.embed import Embedder, make_embedder
from ragline.embed.base import BaseEmbedder, WrappedEmbedder

CONCURRENT_BACKENDS = frozenset({"onnx"})


class ParallelEmbedder(WrappedEmbedder):
    """An Embedder that spreads ``embed_documents`` over ``workers`` concurrent calls of ``embedder``."""

    def __init__(self, embedder: Embedder, workers: int) -> None:
        super().__init__(embedder)
        self.workers = max(1, workers)
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="ragline-embed") if self.workers > 1 else None

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        if self._pool is None or len(texts) < 2 * self.workers:
            return self.inner.embed_documents(texts)
        self.inner.warm_up()  # once, before the threads race to load the model
        if isinstance(self.inner, BaseEmbedder):  # each worker takes the next forward pass when it is free
            return self.inner.embed_documents(texts, run=self._pool.map)
        # Deal the texts out by length, so every call gets as much work (each sorts its share again).
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        shares = [order[w :: self.workers] for w in range(self.workers)]
        futures = [self._pool.submit(self.inner.embed_documents, [texts[i] for i in s]) for s in shares]
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        for share, future in zip(shares, futures, strict=True):
            out[share] = future.result()
        return out

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)


def ingest_model(settings: EmbeddingSettings, workers: int, shared: Embedder | None = None) -> tuple[Embedder, int]:
    """The model an ingest runs, and how many concurrent calls it takes (0: one call at a time, beside nothing).

    A backend that allows concurrent calls gets ``workers`` (0: one per core) one-thread calls, unless
    ``settings.threads`` says otherwise; any other backend is ``shared`` (or a new one), one call at a time.
    """
    if settings.backend not in CONCURRENT_BACKENDS:
        return shared or make_embedder(settings), 0
    workers = workers or os.cpu_count() or 1
    if workers > 1 and settings.threads is None:
        return make_embedder(settings.model_copy(update={"threads": 1})), workers
    return shared or make_embedder(settings), workers


def parallel(model: Embedder, calls: int) -> tuple[Embedder, bool]:
    """What ``ingest_model`` chose, ready to run: the embedder, and whether its calls may overlap other work
    (chunking, counting)."""
    return (ParallelEmbedder(model, calls), True) if calls else (model, False)


def ingest_embedder(settings: EmbeddingSettings, workers: int, shared: Embedder | None = None) -> tuple[Embedder, bool]:
    """The embedder an ingest runs (see ``ingest_model``), and whether its calls may overlap other work."""
    return parallel(*ingest_model(settings, workers, shared))
