"""The Embedder protocol and a base class that builds the conveniences on one method."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol, runtime_checkable

import numpy as np

log = logging.getLogger(__name__)

# map(function, passes): how ``BaseEmbedder.embed_documents`` runs its forward passes (in turn, or a pool's map).
PassRunner = Callable[[Callable[[list[str]], np.ndarray], Iterable[list[str]]], Iterable[np.ndarray]]


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into fixed-size vectors."""

    name: str

    @property
    def dimension(self) -> int: ...

    @property
    def max_tokens(self) -> int: ...

    def warm_up(self) -> None: ...

    def count_tokens(self, text: str) -> int: ...

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray: ...

    def embed_query(self, text: str) -> np.ndarray: ...


class WrappedEmbedder:
    """An Embedder that hands every call to ``inner``; subclasses override the calls they change
    (caching queries, timing, spreading batches over threads)."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.name = inner.name

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    @property
    def max_tokens(self) -> int:
        return self.inner.max_tokens

    def warm_up(self) -> None:
        self.inner.warm_up()

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self.inner.embed_documents(texts)

    def embed_query(self, text: str) -> np.ndarray:
        return self.inner.embed_query(text)


_RECENT_QUERIES = 32


class BaseEmbedder:
    """Subclasses implement ``_load`` and ``_embed_batch``; batching, prefixes, length sorting and
    normalisation live here so every backend gets them the same way."""

    name: str = "embedder"

    def __init__(
        self,
        *,
        batch_size: int = 32,
        normalize: bool = True,
        query_prefix: str = "",
        document_prefix: str = "",
    ) -> None:
        self.batch_size = batch_size
        self.normalize = normalize
        self.query_prefix = query_prefix
        self.document_prefix = document_prefix
        self._ready = False
        self._loading = threading.Lock()  # one load, whichever thread asks first (the others wait for it)
        self._recent: dict[str, np.ndarray] = {}  # query text -> vector, oldest first

    # --- what a backend provides -------------------------------------------------------------
    def _load(self) -> None:
        raise NotImplementedError

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError

    def _token_lengths(self, texts: Sequence[str]) -> list[int]:
        raise NotImplementedError

    @property
    def dimension(self) -> int:
        raise NotImplementedError

    @property
    def max_tokens(self) -> int:
        raise NotImplementedError

    # --- conveniences ------------------------------------------------------------------------
    def warm_up(self) -> None:
        if self._ready:
            return
        with self._loading:
            if not self._ready:
                self._load()
                self._ready = True

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` alone (no special tokens), as chunk sizes are counted."""
        self.warm_up()
        return self._token_lengths([text])[0]

    def embed_documents(self, texts: Sequence[str], *, run: PassRunner = map) -> np.ndarray:
        """Embed many texts, ``batch_size`` to a forward pass; sorted by their token counts inside so each
        batch pads little. ``run`` maps ``_embed_batch`` over the passes (an executor's ``map`` runs them
        concurrently, each worker taking the next pass as it finishes one).

        Sorted by characters, the Ray docs' chunks were padded to 1.32 times their tokens in batches of 32
        (code and prose spend characters differently); by tokens, to 1.01 times. The model reads every padded
        position, so this is that much less work for one tokenizer pass.
        """
        self.warm_up()
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        prefixed = [self.document_prefix + t for t in texts]
        if self.batch_size == 1:  # nothing to pad, so no counting pass to sort by
            order = list(range(len(prefixed)))
        else:
            lengths = self._sort_lengths(prefixed)
            order = sorted(range(len(prefixed)), key=lambda i: lengths[i], reverse=True)
        out = np.empty((len(prefixed), self.dimension), dtype=np.float32)
        passes = [order[lo : lo + self.batch_size] for lo in range(0, len(order), self.batch_size)]
        batches = [[prefixed[i] for i in p] for p in passes]
        for idx, vectors in zip(passes, run(self._embed_batch, batches), strict=True):
            out[idx] = vectors
        return self._finish(out)

    def _sort_lengths(self, texts: list[str]) -> list[int]:
        """What ``embed_documents`` sorts by: the tokens the model reads (longer texts are cut at max_tokens)."""
        cap = self.max_tokens
        return [min(n, cap) for n in self._token_lengths(texts)]

    def embed_query(self, text: str) -> np.ndarray:
        """The query's vector; the last few are kept, since one question is embedded by retrieval and again
        when its answer's evidence is scored."""
        cached = self._recent.get(text)
        if cached is not None:
            return cached.copy()
        self.warm_up()
        vector = self._finish(self._embed_batch([self.query_prefix + text]))[0]
        self._recent[text] = vector.copy()
        while len(self._recent) > _RECENT_QUERIES:
            self._recent.pop(next(iter(self._recent)), None)
        return vector

    def _finish(self, vectors: np.ndarray) -> np.ndarray:
        vectors = np.asarray(vectors, dtype=np.float32)
        if self.normalize:
            norms = np.linalg.norm(vectors, axis=1, keepdims=True)
            vectors = vectors / np.maximum(norms, 1e-12)
        return vectors
