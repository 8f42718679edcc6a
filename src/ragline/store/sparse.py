"""BM25 sparse vectors, computed the same way for every backend.

The embedded engine ships Qdrant's own BM25 tokeniser (``qdrant_edge.Bm25``: word tokens, lowercase, English
stop words and Snowball stemming, hashed term ids). qdrant-client's local mode could only do that through
fastembed, which downloads its model, so both backends take their sparse vectors from here: documents carry
term-frequency weights, queries carry 1.0 per term, and the engine multiplies in the IDF (``Modifier.IDF``)
from the corpus it holds, so nothing here needs corpus statistics.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from ragline.records import Chunk

SPARSE = "bm25"  # the sparse vector's name, beside filters.DENSE in the same points
# BM25's length normalisation compares a chunk with this many tokens (after stop words); chunks of
# ~200 model tokens hold ~100 such words, and a shorter reference punishes long chunks harder.
AVG_LEN = 100.0


@dataclass(frozen=True, slots=True)
class SparseVector:
    """Term ids and weights, as both engines take them."""

    indices: list[int]
    values: list[float]

    def __bool__(self) -> bool:
        return bool(self.indices)


_lock = threading.Lock()


@lru_cache(maxsize=1)
def _model() -> Any:
    import qdrant_edge as qe

    return qe.Bm25(qe.Bm25Config(avg_len=AVG_LEN))


def sparse_text(chunk: Chunk) -> str:
    """What BM25 indexes: the same text the embedder sees, so titles count as words of the chunk."""
    return chunk.embedding_text()


def document_vector(text: str) -> SparseVector:
    """BM25 term weights of an indexed text (without IDF: the engine applies it)."""
    with _lock:
        v = _model().embed_document(text)
    return SparseVector(list(v.indices), list(v.values))


def query_vector(text: str) -> SparseVector:
    """The query's terms, each with weight 1."""
    with _lock:
        v = _model().embed_query(text)
    return SparseVector(list(v.indices), list(v.values))
