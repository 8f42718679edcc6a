"""Rerank stages: the blend arithmetic by hand, and each stage on the bundled model."""

from __future__ import annotations

import pytest

from ragline.config import RetrievalSettings
from ragline.errors import ConfigError
from ragline.records import Chunk, Hit
from ragline.rerank import PageReranker, blend, make_rerankers, windows


def hit(source: str, text: str, title: str = "T", section: str = "") -> Hit:
    c = Chunk(
        doc_id=source,
        source=source,
        title=title,
        section=section,
        anchor=None,
        text=text,
        start=0,
        end=len(text),
        index=0,
    )
    return Hit(c, 0.0)


def test_blend_by_hand() -> None:
    hs = [hit("a", "x"), hit("b", "y"), hit("c", "z")]
    # stage prefers c, then b, then a; with weight 1 against the given order a, b, c:
    # a: 1/61 + 1/63, b: 1/62 + 1/62, c: 1/63 + 1/61 -> a and c tie, ties keep the given order
    out = blend(hs, [0.1, 0.5, 0.9], 1.0)
    assert [h.chunk.source for h in out] == ["a", "c", "b"]
    assert out[0].score == pytest.approx(1 / 61 + 1 / 63)
    # a heavier stage wins
    assert [h.chunk.source for h in blend(hs, [0.1, 0.5, 0.9], 2.0)] == ["c", "b", "a"]


def test_page_aggregation_lifts_a_page_with_several_candidates() -> None:
    hs = [hit("a", "1"), hit("b", "2"), hit("c", "3"), hit("b", "4")]
    out = PageReranker(weight=1.0).rerank("q", hs)
    assert out[0].chunk.source == "b"


def test_windows() -> None:
    text = "One is here. Two is there. Three is everywhere. Four is more."
    assert windows(text, 2) == [
        "One is here. Two is there.",
        "Two is there. Three is everywhere.",
        "Three is everywhere. Four is more.",
    ]
    assert windows("Short one.", 3) == ["Short one."]


def test_unknown_or_malformed_stages_fail_early() -> None:
    with pytest.raises(ConfigError, match="magic"):
        make_rerankers(RetrievalSettings(rerank=["magic"]), embedder=None)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="weight"):
        make_rerankers(RetrievalSettings(rerank=["title:x"]), embedder=None)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="rerank_model"):
        make_rerankers(RetrievalSettings(rerank=["cross-encoder"]), embedder=None)  # type: ignore[arg-type]


@pytest.mark.slow
def test_model_stages_prefer_the_matching_chunk() -> None:
    from ragline.config import EmbeddingSettings
    from ragline.embed import make_embedder

    embedder = make_embedder(EmbeddingSettings())
    hs = [
        hit("a", "Actors hold state between calls. They run on workers.", title="Actors"),
        hit("b", "Tasks are stateless. Use the GPU option to request a GPU for a task.", title="GPU support"),
    ]
    for spec in ("sentences:3", "title:3"):
        [stage] = make_rerankers(RetrievalSettings(rerank=[spec]), embedder)
        assert stage.rerank("how do I request a GPU", hs)[0].chunk.source == "b", spec


@pytest.mark.slow
def test_cross_encoder_stage_runs_a_real_cross_encoder() -> None:
    # No trained cross-encoder ships offline; the bundled MiniLM with a fresh scoring head exercises the
    # plumbing (load, score pairs, reorder by score) without claiming anything about quality.
    from ragline.embed.models import bundled_minilm_dir

    [stage] = make_rerankers(
        RetrievalSettings(rerank=["cross-encoder"], rerank_model=str(bundled_minilm_dir())),
        embedder=None,  # type: ignore[arg-type]
    )
    hs = [hit("a", "alpha"), hit("b", "beta"), hit("c", "gamma")]
    out = stage.rerank("question", hs)
    assert sorted(h.chunk.source for h in out) == ["a", "b", "c"]
    assert [h.score for h in out] == sorted((h.score for h in out), reverse=True)
