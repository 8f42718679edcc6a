"""The ONNX backend: the dynamically quantized model is built once, cached, and embeds like the shipped file."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from ragline.embed.models import bundled_minilm_int8_onnx
from ragline.embed.onnx import OnnxEmbedder
from ragline.embed.quantize import dynamic_int8

pytestmark = pytest.mark.slow

DOCS = [
    "Ray Serve scales a deployment by adding replicas; autoscaling follows the queue length.",
    "Qdrant stores dense vectors and sparse BM25 vectors side by side in one collection.",
    "The crawler honours robots.txt and re-fetches a page only when its ETag changed.",
    "Chunks are split at paragraphs, lines and sentences, with overlap, within one section.",
]
QUERIES = [
    "how do replicas autoscale in serve",
    "where are the sparse vectors kept",
    "does the crawler download unchanged pages again",
    "how is a section split into chunks",
]


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("onnx-cache")


def test_the_quantized_model_is_built_once_then_read_from_the_cache(cache: Path) -> None:
    first = dynamic_int8(bundled_minilm_int8_onnx(), cache)
    assert first.parent == cache and first.is_file() and "dynamic-int8" in first.name
    stamp = first.stat().st_mtime_ns
    again = dynamic_int8(bundled_minilm_int8_onnx(), cache)
    assert again == first and again.stat().st_mtime_ns == stamp
    assert [p.name for p in cache.iterdir()] == [first.name]  # no build folders left behind


def test_an_unwritable_cache_still_gives_a_model(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    path = dynamic_int8(bundled_minilm_int8_onnx(), blocker / "cache")
    try:
        assert path.is_file() and blocker not in path.parents
    finally:
        shutil.rmtree(path.parent, ignore_errors=True)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_dynamic_quantization_embeds_like_the_shipped_file(cache: Path) -> None:
    shipped = OnnxEmbedder("all-MiniLM-L6-v2", quantization="weights")
    dynamic = OnnxEmbedder("all-MiniLM-L6-v2", quantization="dynamic", cache_dir=cache)
    assert shipped.model_file() == bundled_minilm_int8_onnx()
    assert dynamic.model_file().parent == cache
    a = _unit(shipped.embed_documents(DOCS + QUERIES))
    b = _unit(dynamic.embed_documents(DOCS + QUERIES))
    cosine = (a * b).sum(axis=1)
    assert cosine.min() > 0.97 and not np.allclose(a, b, atol=1e-5)  # close, yet really another model file
    for vectors in (a, b):  # each query finds its own document first with either file
        scores = vectors[len(DOCS) :] @ vectors[: len(DOCS)].T
        assert list(scores.argmax(axis=1)) == list(range(len(QUERIES)))


class _Recording(OnnxEmbedder):
    """Notes the token counts of every forward pass's texts."""

    def __init__(self, *args: object, **kw: object) -> None:
        super().__init__(*args, **kw)  # type: ignore[arg-type]
        self.passes: list[list[int]] = []

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        self.passes.append(self._token_lengths(texts))
        return super()._embed_batch(texts)


def test_batches_are_filled_by_token_count_and_vectors_come_back_in_order(cache: Path) -> None:
    # Characters and tokens disagree: long words are few tokens, numbers and punctuation one each.
    texts = [
        "internationalization characteristically incomprehensibilities",  # 61 characters, 10 tokens
        "1 2 3 4 5 6 7 8 9 10 11 12",  # 26, 12
        "Ray Serve scales a deployment by adding replicas.",  # 49, 10
        "x = f(a, b); y = g[c] + h{d}",  # 28, 20
        "Qdrant stores dense vectors.",  # 28, 7
        "short",  # 5, 1
    ]
    embedder = _Recording("all-MiniLM-L6-v2", cache_dir=cache, batch_size=2)
    vectors = embedder.embed_documents(texts)
    counts = [n for batch in embedder.passes for n in batch]
    assert counts == sorted(counts, reverse=True)  # by characters the 300-char word would come first
    assert embedder.passes[0] == [20, 12]
    one_by_one = np.vstack([embedder.embed_documents([t]) for t in texts])
    # Each vector is its own text's: nearest to that text embedded alone (not equal: dynamic quantization
    # scales activations by the whole batch).
    assert list(np.argmax(vectors @ one_by_one.T, axis=1)) == list(range(len(texts)))


def test_by_default_each_text_runs_alone_so_its_vector_ignores_its_companions(cache: Path) -> None:
    embedder = _Recording("all-MiniLM-L6-v2", cache_dir=cache)
    texts = DOCS + QUERIES
    together = embedder.embed_documents(texts)
    assert embedder.passes == [[n] for n in embedder._token_lengths(texts)]  # one text per pass, in order
    alone = np.vstack([embedder.embed_documents([t]) for t in texts])
    reordered = embedder.embed_documents(texts[::-1])[::-1]
    assert np.array_equal(together, alone) and np.array_equal(together, reordered)
    assert np.array_equal(together[len(DOCS)], embedder.embed_query(QUERIES[0]))  # as a question is embedded
    # What running alone avoids: in one batch, the activation scales are the whole batch's.
    batched = OnnxEmbedder("all-MiniLM-L6-v2", cache_dir=cache, batch_size=len(texts)).embed_documents(texts)
    assert not np.allclose(batched, alone, atol=1e-4)


def test_counting_tokens_loads_the_tokenizer_not_the_model(cache: Path) -> None:
    counter = OnnxEmbedder("all-MiniLM-L6-v2", cache_dir=cache)
    counts = [counter.count_tokens(t) for t in DOCS]
    assert counter._session is None  # an ingest's chunker only counts: no model session of its own
    loaded = OnnxEmbedder("all-MiniLM-L6-v2", cache_dir=cache)
    loaded.warm_up()
    assert counts == loaded._token_lengths(DOCS) and all(n > 5 for n in counts)
