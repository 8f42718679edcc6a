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
