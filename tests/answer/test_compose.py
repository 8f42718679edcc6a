"""Extractive answers: cited, short, de-duplicated, code whole and introduced."""

from __future__ import annotations

import re

from ragline.answer.check import markers
from ragline.answer.compose import NO_EVIDENCE, compose
from ragline.answer.evidence import select
from ragline.embed.base import Embedder

from .conftest import hit
from .test_evidence import QDRANT

QUESTION = "How do I use a Qdrant server instead of the embedded engine?"


def test_the_answer_cites_the_block_and_brings_the_code_its_sentence_introduces(embedder: Embedder) -> None:
    hits = [
        hit("On one machine ragline embeds the engine and starts its own Ray.", "https://d/cluster"),
        hit(QDRANT, "https://d/configuration"),
    ]
    evidence = select(QUESTION, hits, embedder)
    answer = compose(evidence)
    n = [b.hit.chunk.source for b in evidence.blocks].index("https://d/configuration") + 1
    assert f"set its URL and, if it has one, its API key [{n}]:" in answer
    assert "```\nexport RAGLINE_QDRANT_URL=http://qdrant.internal:6333" in answer
    assert answer.index(f"its API key [{n}]:") < answer.index("```")
    assert set(markers(answer)) <= set(range(1, len(evidence.blocks) + 1)) and n in markers(answer)


def test_every_sentence_has_its_marker_before_the_final_punctuation(embedder: Embedder) -> None:
    text = "The widget has a blue lever. Turn the blue lever three times to calibrate the widget. It is quiet."
    answer = compose(select("How do I calibrate the widget?", [hit(text)], embedder))
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", answer) if s]
    assert sentences and all(re.search(r" \[1\][.!?:]?$", s) for s in sentences), answer


def test_near_duplicates_appear_once(embedder: Embedder) -> None:
    same = "Turn the blue lever three times clockwise to calibrate the flux widget."
    hits = [hit(same, "https://d/a"), hit(same.replace("Turn", "Simply turn"), "https://d/b")]
    answer = compose(select("How do I calibrate the flux widget?", hits, embedder))
    assert answer.count("blue lever") == 1


def test_at_most_the_sentences_asked_for(embedder: Embedder) -> None:
    text = " ".join(f"The flux widget supports calibration mode {i} for lever tuning." for i in range(10))
    answer = compose(
        select("Which calibration modes does the flux widget support?", [hit(text)], embedder), max_sentences=2
    )
    assert len(markers(answer)) == 1 and answer.count("[1]") <= 2


def test_nothing_retrieved_says_so() -> None:
    assert compose(select("anything", [], None)) == NO_EVIDENCE


def test_weak_evidence_says_the_documentation_does_not_answer(embedder: Embedder) -> None:
    from ragline.config import AnswerSettings

    floor = AnswerSettings().min_evidence
    question = "How do I use a Qdrant server instead of the embedded engine?"
    strong = select(question, [hit(QDRANT)], embedder)
    weak = select("Which sourdough starter rises fastest in a cold kitchen?", [hit(QDRANT)], embedder)
    assert max(b.best for b in weak.blocks) < floor <= max(b.best for b in strong.blocks)
    assert compose(weak, min_evidence=floor) == NO_EVIDENCE
    assert "RAGLINE_QDRANT_URL" in compose(strong, min_evidence=floor)
