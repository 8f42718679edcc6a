"""Reranking: a pluggable stage that reorders the first candidates of a search.

Every stage takes the question and the candidates (best first) and returns them reordered. A cross-encoder
(any sentence-transformers ``CrossEncoder``, when the user configures one) replaces the order with its own
scores. The other stages use only what ships with ragline and *blend* their signal with the order they were
given, by weighted reciprocal rank fusion, so a weak signal nudges rather than overrides:

* ``sentences``: the bundled embedder at a finer grain, the best-matching window of a few sentences;
* ``title``: the similarity of the question to the chunk's page and section titles;
* ``page``: pages with several good candidates lift their chunks (section/page-level aggregation).

Which stages are on by default is decided by measurement (``bench/eval.py``), not by taste.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlsplit

import numpy as np

from ragline.config import RetrievalSettings
from ragline.embed.base import Embedder
from ragline.errors import ConfigError, MissingDependencyError
from ragline.records import Hit

log = logging.getLogger(__name__)

RRF_K = 60
# With retrieval.rerank unset, page-level evidence is used on indexes whose documents average at least this
# many chunks: measured, it lifts the Ray docs (13 chunks a page) and lowers SciFact (2 an abstract).
AUTO_PAGE_MIN_CHUNKS = 4.0


@runtime_checkable
class Reranker(Protocol):
    """Reorders candidates; cheap to construct, models load in ``warm_up``."""

    name: str

    def warm_up(self) -> None: ...

    def rerank(self, query: str, hits: Sequence[Hit], query_vector: np.ndarray | None = None) -> list[Hit]: ...


def blend(hits: Sequence[Hit], scores: Sequence[float], weight: float, k: int = RRF_K) -> list[Hit]:
    """Fuse the given order (weight 1) with the order of ``scores`` (``weight``) by reciprocal rank fusion.

    The fused score replaces each hit's score; ties keep the given order.
    """
    by_stage = sorted(range(len(hits)), key=lambda i: -scores[i])
    stage_rank = {i: r for r, i in enumerate(by_stage, start=1)}
    fused = [1.0 / (k + i + 1) + weight / (k + stage_rank[i]) for i in range(len(hits))]
    order = sorted(range(len(hits)), key=lambda i: (-fused[i], i))
    return [Hit(hits[i].chunk, fused[i]) for i in order]


class _TextCache:
    """Embeddings of short texts (titles, sentence windows), kept across questions; bounded, thread-safe."""

    def __init__(self, embedder: Embedder, size: int = 50_000) -> None:
        self.embedder = embedder
        self.size = size
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if missing:
            vectors = self.embedder.embed_documents(missing)
            with self._lock:
                for t, v in zip(missing, vectors, strict=True):
                    self._cache[t] = v
                while len(self._cache) > self.size:
                    self._cache.popitem(last=False)
        with self._lock:
            out = []
            for t in texts:
                v = self._cache.get(t)
                if v is None:  # evicted meanwhile by a very large batch: embed it alone
                    v = self.embedder.embed_documents([t])[0]
                out.append(v)
        return np.vstack(out) if out else np.zeros((0, self.embedder.dimension), dtype=np.float32)


_NOT_TOPICAL = re.compile(r"^(en|docs?|latest|stable|master|main|html?|index|v?\d+(\.\d+)*)$", re.I)


def breadcrumb(source: str) -> str:
    """The topical folders of a source URL or path, e.g. ``serve > production guide`` for
    ``https://docs.ray.io/en/master/serve/production-guide/kubernetes.html`` (language, version and
    file names left out): where a page sits often names the product area its title leaves implicit."""
    path = urlsplit(source).path if "://" in source else source
    parts = [p for p in path.split("/")[:-1] if p and not _NOT_TOPICAL.match(p)]
    return " > ".join(re.sub(r"[-_]+", " ", p) for p in parts)


class _Blending:
    """A reranker that blends the question's similarity to some text of each hit into its score."""

    def __init__(self, embedder: Embedder, weight: float) -> None:
        self.embedder = embedder
        self.weight = weight
        self._cache = _TextCache(embedder)

    def warm_up(self) -> None:
        self.embedder.warm_up()

    def rerank(self, query: str, hits: Sequence[Hit], query_vector: np.ndarray | None = None) -> list[Hit]:
        if not hits:
            return []
        q = query_vector if query_vector is not None else self.embedder.embed_query(query)
        return blend(hits, self._similarities(q, hits), self.weight)

    def _similarities(self, q: np.ndarray, hits: Sequence[Hit]) -> list[float]:
        """The question's similarity to this reranker's text of each hit, in order."""
        raise NotImplementedError


class TitleReranker(_Blending):
    """Blends in the similarity of the question to "page title - section title" (with ``path``, prefixed
    by the page's folders: ``serve > production guide: Kubernetes - Setup``)."""

    name = "title"

    def __init__(self, embedder: Embedder, weight: float = 0.5, path: bool = False) -> None:
        super().__init__(embedder, weight)
        self.path = path

    def _similarities(self, q: np.ndarray, hits: Sequence[Hit]) -> list[float]:
        heads = [_heading(h) for h in hits]
        if self.path:
            heads = [
                f"{crumbs}: {head}" if (crumbs := breadcrumb(h.chunk.source)) else head
                for h, head in zip(hits, heads, strict=True)
            ]
        scores: list[float] = (self._cache.embed(heads) @ q).tolist()
        return scores


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9`\"'(\[])|\n{2,}")


def windows(text: str, size: int = 3, max_chars: int = 600) -> list[str]:
    """Overlapping windows of ``size`` sentences (one step apart), each at most ``max_chars``."""
    sentences = [s.strip() for s in _SENTENCE_END.split(text) if s and s.strip()]
    if len(sentences) <= size:
        return [text.strip()[:max_chars]] if text.strip() else []
    return [" ".join(sentences[i : i + size])[:max_chars] for i in range(len(sentences) - size + 1)]


class SentenceReranker(_Blending):
    """Blends in the best match between the question and any window of a few sentences of the chunk:
    a chunk embedding averages over everything the chunk says, a window keeps a precise match sharp."""

    name = "sentences"

    def __init__(self, embedder: Embedder, weight: float = 1.0, window: int = 3) -> None:
        super().__init__(embedder, weight)
        self.window = window

    def _similarities(self, q: np.ndarray, hits: Sequence[Hit]) -> list[float]:
        pieces: list[str] = []
        owner: list[int] = []
        for i, h in enumerate(hits):
            head = _heading(h)
            for w in windows(h.chunk.text, self.window) or [h.chunk.text]:
                pieces.append(f"{head}\n{w}" if head else w)
                owner.append(i)
        sims = self._cache.embed(pieces) @ q
        best = np.full(len(hits), -1.0, dtype=np.float32)
        np.maximum.at(best, np.asarray(owner), sims.astype(np.float32))
        scores: list[float] = best.tolist()
        return scores


class PageReranker:
    """Blends in page-level evidence: a page's score is the sum of its candidates' reciprocal ranks,
    so several good chunks of one page lift each of them (section/page aggregation)."""

    name = "page"

    def __init__(self, weight: float = 0.5) -> None:
        self.weight = weight

    def warm_up(self) -> None:
        pass

    def rerank(self, query: str, hits: Sequence[Hit], query_vector: np.ndarray | None = None) -> list[Hit]:
        page: dict[str, float] = defaultdict(float)
        for rank, h in enumerate(hits, start=1):
            page[h.chunk.doc_id] += 1.0 / (RRF_K + rank)
        return blend(hits, [page[h.chunk.doc_id] for h in hits], self.weight)


class CrossEncoderReranker:
    """A sentence-transformers CrossEncoder scores (question, chunk) pairs; its order replaces the given one."""

    name = "cross-encoder"

    def __init__(self, model: str, device: str = "cpu", batch_size: int = 32) -> None:
        self.model = model
        self.device = device
        self.batch_size = batch_size
        self._ce: Any = None
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        with self._lock:
            if self._ce is None:
                self._ce = self._load()

    def _load(self) -> Any:
        try:
            from sentence_transformers import CrossEncoder
        except ImportError as e:
            raise MissingDependencyError("sentence-transformers", "embed") from e
        try:
            ce = CrossEncoder(self.model, device=self.device)
        except Exception as e:  # many kinds; all mean "cannot load this model"
            raise ConfigError(f"cannot load the reranking model {self.model!r}: {e}") from e
        log.info("cross-encoder %s loaded", self.model)
        return ce

    def rerank(self, query: str, hits: Sequence[Hit], query_vector: np.ndarray | None = None) -> list[Hit]:
        if not hits:
            return []
        self.warm_up()
        pairs = [(query, h.chunk.embedding_text()) for h in hits]
        scores = np.asarray(
            self._ce.predict(pairs, batch_size=self.batch_size, show_progress_bar=False), dtype=np.float32
        ).reshape(-1)
        order = sorted(range(len(hits)), key=lambda i: (-float(scores[i]), i))
        return [Hit(hits[i].chunk, float(scores[i])) for i in order]


def _heading(h: Hit) -> str:
    c = h.chunk
    return c.title if c.section in ("", c.title) else f"{c.title} - {c.section}" if c.title else c.section


def _cross_encoder(settings: RetrievalSettings, embedder: Embedder, device: str, weight: float | None) -> Reranker:
    if not settings.rerank_model:
        raise ConfigError("the cross-encoder reranker needs retrieval.rerank_model (a CrossEncoder name or path)")
    return CrossEncoderReranker(settings.rerank_model, device=device)


def _weighted(cls: Callable[..., Reranker], default: float) -> Callable[..., Reranker]:
    def build(settings: RetrievalSettings, embedder: Embedder, device: str, weight: float | None) -> Reranker:
        w = default if weight is None else weight
        return cls(weight=w) if cls is PageReranker else cls(embedder, weight=w)

    return build


# name -> factory(settings, embedder, device, weight): a registry rather than if-chains; add a stage here.
RERANKERS: dict[str, Callable[[RetrievalSettings, Embedder, str, float | None], Reranker]] = {
    "cross-encoder": _cross_encoder,
    "sentences": _weighted(SentenceReranker, 1.0),
    "title": _weighted(TitleReranker, 0.5),
    "path-title": _weighted(lambda e, weight: TitleReranker(e, weight, path=True), 0.5),
    "page": _weighted(PageReranker, 0.5),
}


def auto_stages(chunks: int, documents: int) -> list[str]:
    """The stages of an unset ``retrieval.rerank``, for an index of ``chunks`` chunks of ``documents``
    documents: page evidence sums several chunks of one page, so it only helps when pages have several."""
    return ["page"] if documents and chunks / documents >= AUTO_PAGE_MIN_CHUNKS else []


def make_rerankers(
    settings: RetrievalSettings, embedder: Embedder, device: str = "cpu", stages: Sequence[str] | None = None
) -> list[Reranker]:
    """The stages, in order: ``name`` or ``name:weight`` (the blend weight of that stage); ``stages``
    default to ``settings.rerank`` (none when it is unset)."""
    if stages is None:
        stages = settings.rerank or []
    out = []
    for spec in stages:
        name, _, weight = spec.partition(":")
        try:
            factory = RERANKERS[name.strip()]
        except KeyError:
            raise ConfigError(f"unknown reranker {name!r}; one of {', '.join(sorted(RERANKERS))}") from None
        try:
            w = float(weight) if weight else None
        except ValueError:
            raise ConfigError(f"reranker {spec!r}: the weight after ':' must be a number") from None
        out.append(factory(settings, embedder, device, w))
    return out


__all__ = [
    "AUTO_PAGE_MIN_CHUNKS",
    "RERANKERS",
    "CrossEncoderReranker",
    "PageReranker",
    "Reranker",
    "SentenceReranker",
    "TitleReranker",
    "auto_stages",
    "blend",
    "make_rerankers",
    "windows",
]
