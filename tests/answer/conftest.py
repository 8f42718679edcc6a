"""Fixtures for the answer tests: the bundled embedding model, and hits made from text."""

from __future__ import annotations

import pytest

from ragline.config import EmbeddingSettings
from ragline.embed import make_embedder
from ragline.embed.base import Embedder
from ragline.records import Chunk, Hit


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    model = make_embedder(EmbeddingSettings())
    model.warm_up()
    return model


def hit(text: str, source: str = "https://docs.example/page", anchor: str | None = None, score: float = 1.0) -> Hit:
    chunk = Chunk(
        doc_id=source,
        source=source,
        title="Page",
        section="",
        anchor=anchor,
        text=text,
        start=0,
        end=len(text),
        index=0,
    )
    return Hit(chunk=chunk, score=score)
