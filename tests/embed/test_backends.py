"""Both embedding backends, sentence-transformers and ONNX Runtime, held to the same contract."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ragline.config import EmbeddingSettings
from ragline.embed import Embedder, make_embedder

from .contract import EmbedderContract

pytestmark = pytest.mark.slow


def _embedder(backend: str, cache: Path) -> Iterator[Embedder]:
    embedder = make_embedder(EmbeddingSettings(backend=backend, cache_dir=cache, threads=1))  # type: ignore[arg-type]
    embedder.warm_up()
    yield embedder


class TestOnnxContract(EmbedderContract):
    @pytest.fixture(scope="class")
    def embedder(self, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Embedder]:
        yield from _embedder("onnx", tmp_path_factory.mktemp("onnx-cache"))


class TestSentenceTransformersContract(EmbedderContract):
    @pytest.fixture(scope="class")
    def embedder(self, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Embedder]:
        pytest.importorskip("sentence_transformers")
        yield from _embedder("sentence-transformers", tmp_path_factory.mktemp("st-cache"))
