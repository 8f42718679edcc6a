"""Embedders: the protocol, and backends chosen by name in settings."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ragline.config import EmbeddingSettings
from ragline.embed.base import BaseEmbedder, Embedder
from ragline.errors import ConfigError

__all__ = ["BaseEmbedder", "Embedder", "make_embedder"]


def _common(s: EmbeddingSettings) -> dict[str, Any]:
    """What every backend takes (``BaseEmbedder``'s arguments)."""
    common: dict[str, Any] = {
        "normalize": s.normalize,
        "query_prefix": s.query_prefix,
        "document_prefix": s.document_prefix,
    }
    if s.batch_size is not None:  # otherwise the backend's own default
        common["batch_size"] = s.batch_size
    return common


def _sentence_transformers(s: EmbeddingSettings) -> Embedder:
    from ragline.embed.sentence_transformers import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder(s.model, device=s.device, threads=s.threads, **_common(s))


def _onnx(s: EmbeddingSettings) -> Embedder:
    from ragline.embed.onnx import OnnxEmbedder

    return OnnxEmbedder(
        s.model, threads=s.threads, quantization=s.onnx_quantization, cache_dir=s.cache_dir, **_common(s)
    )


BACKENDS: dict[str, Callable[[EmbeddingSettings], Embedder]] = {
    "sentence-transformers": _sentence_transformers,
    "onnx": _onnx,
}


def make_embedder(settings: EmbeddingSettings) -> Embedder:
    """Build (cheaply: weights load on first use) the configured embedder."""
    try:
        return BACKENDS[settings.backend](settings)
    except KeyError:
        raise ConfigError(f"unknown embedding backend {settings.backend!r}; one of {sorted(BACKENDS)}") from None
