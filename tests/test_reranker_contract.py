"""What every reranker stage must do, run for each stage of the registry over the hash embedder (plumbing: the
stages with the bundled model are in test_rerank.py's slow tests)."""

from __future__ import annotations

import pytest
from fakes import HashEmbedder

from ragline.config import RetrievalSettings
from ragline.embed import Embedder
from ragline.records import Chunk, Hit
from ragline.rerank import RERANKERS, Reranker, make_rerankers

QUESTION = "how do I scale a deployment with replicas"
PAGES = [
    ("https://docs.example/serve/scaling.html", "Scaling", "Set num_replicas on a deployment to run more copies."),
    ("https://docs.example/serve/scaling.html", "Autoscaling", "Autoscaling adds replicas as the queue grows."),
    ("https://docs.example/data/loading.html", "Loading data", "Read Parquet files with read_parquet."),
    ("https://docs.example/train/checkpoints.html", "Checkpoints", "Save a checkpoint at the end of each epoch."),
]
# The cross-encoder stage needs a CrossEncoder model, and none ships in a package.
STAGES = sorted(name for name in RERANKERS if name != "cross-encoder")


def _hits() -> list[Hit]:
    hits = []
    for i, (source, section, text) in enumerate(PAGES):
        chunk = Chunk(source, source, "Docs", section, None, text, 0, len(text), i)
        hits.append(Hit(chunk, 1.0 - i / 10))
    return hits


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return HashEmbedder()


@pytest.fixture(params=STAGES)
def stage(request: pytest.FixtureRequest, embedder: Embedder) -> Reranker:
    [made] = make_rerankers(RetrievalSettings(), embedder, stages=[request.param])
    made.warm_up()
    return made


def test_a_stage_returns_the_same_hits_reordered(stage: Reranker) -> None:
    hits = _hits()
    out = stage.rerank(QUESTION, hits)
    assert sorted(h.chunk.index for h in out) == sorted(h.chunk.index for h in hits)
    assert all(isinstance(h.score, float) for h in out)


def test_a_stage_is_deterministic_and_takes_the_query_vector(stage: Reranker, embedder: Embedder) -> None:
    hits = _hits()
    first = [h.chunk.index for h in stage.rerank(QUESTION, hits)]
    assert [h.chunk.index for h in stage.rerank(QUESTION, hits)] == first
    vector = embedder.embed_query(QUESTION)
    assert [h.chunk.index for h in stage.rerank(QUESTION, hits, vector)] == first


def test_no_hits_give_no_hits(stage: Reranker) -> None:
    assert stage.rerank(QUESTION, []) == []
