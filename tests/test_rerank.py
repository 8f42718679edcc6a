"""Rerank stages: the blend arithmetic by hand, and each stage on the bundled model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ragline.config import RetrievalSettings
from ragline.errors import ConfigError
from ragline.records import Chunk, Hit
from ragline.rerank import AUTO_PAGE_MIN_CHUNKS, PageReranker, auto_stages, blend, make_rerankers, windows
from ragline.retrieve import Retriever
from ragline.store import EdgeStore
from ragline.store.base import IndexInfo


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


def test_auto_stages_by_chunks_per_document() -> None:
    assert AUTO_PAGE_MIN_CHUNKS == 4.0
    assert auto_stages(6430, 480) == ["page"]  # documentation pages: 13 chunks each
    assert auto_stages(11421, 5183) == []  # abstracts: 2 chunks each
    assert auto_stages(8, 2) == ["page"] and auto_stages(7, 2) == []  # the line: 4 a document
    assert auto_stages(0, 0) == []  # an empty index


def _index(path: Path, pages: int, chunks_per_page: int) -> EdgeStore:
    chunks = [
        Chunk(f"d{p}", f"https://x.io/{p}", "T", "S", None, f"text {p} {i}", i * 10, i * 10 + 9, i)
        for p in range(pages)
        for i in range(chunks_per_page)
    ]
    rows = np.random.default_rng(1).normal(size=(len(chunks), 8)).astype(np.float32)
    store = EdgeStore(path)
    store.open(IndexInfo(model="test/model", dimension=8))
    store.upsert(chunks, rows / np.linalg.norm(rows, axis=1, keepdims=True))
    return store


@pytest.mark.parametrize(("pages", "per_page", "expected"), [(2, 5, ["page"]), (6, 1, [])])
def test_unset_rerank_is_chosen_by_the_open_index(
    tmp_path: Path, pages: int, per_page: int, expected: list[str]
) -> None:
    store = _index(tmp_path / "index", pages, per_page)
    try:
        chosen = Retriever(store, None, RetrievalSettings())  # type: ignore[arg-type]
        assert [r.name for r in chosen.rerankers] == expected
        # an explicit list, empty included, is kept whatever the index
        assert Retriever(store, None, RetrievalSettings(rerank=[])).rerankers == []  # type: ignore[arg-type]
        pinned = Retriever(store, None, RetrievalSettings(rerank=["page:1"]))  # type: ignore[arg-type]
        assert [r.name for r in pinned.rerankers] == ["page"]
    finally:
        store.close()


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
