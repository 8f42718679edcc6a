"""A capable model's refusal (plumbing, scripted model; the real model's refusals are in test_capable_model.py):
shown as it is when the documentation has nothing close, followed by the closest passages when it has."""

from __future__ import annotations

from typing import Any

from fakes import ScriptedGenerator

from ragline.agent import Agent
from ragline.config import AnswerSettings, LLMSettings
from ragline.embed.base import Embedder
from ragline.generate.prompt import ANSWER_PROMPT, HEDGE, REFUSAL
from ragline.records import Hit, Usage

from .conftest import hit
from .test_evidence import QDRANT


class _Given:
    def __init__(self, hits: list[Hit]) -> None:
        self.hits = hits

    def search(self, *_: Any, **__: Any) -> list[Hit]:
        return self.hits


def _agent(embedder: Embedder) -> tuple[Agent, ScriptedGenerator]:
    # A capable model that always says the documentation does not answer.
    model = ScriptedGenerator(REFUSAL, usage=Usage(prompt_tokens=100, completion_tokens=9))
    settings = LLMSettings(model_path="/models/capable.gguf")
    return Agent(_Given([hit(QDRANT)]), model, settings, AnswerSettings(), embedder), model  # type: ignore[arg-type]


def test_a_refusal_over_close_passages_shows_them(embedder: Embedder) -> None:
    agent, model = _agent(embedder)
    answer = agent.ask("How do I use a Qdrant server instead of the embedded engine?")
    # a capable model reads the sections prompt, in auto mode
    assert [sent[0]["content"] for sent in model.sent] == [ANSWER_PROMPT]
    assert answer.answer.startswith(HEDGE) and "RAGLINE_QDRANT_URL" in answer.answer
    assert answer.mode == "extractive" and "no answer" in (answer.fallback or "")
    assert answer.usage.completion_tokens == 9  # the model was asked


def test_a_refusal_with_nothing_close_stands(embedder: Embedder) -> None:
    agent, _ = _agent(embedder)
    answer = agent.ask("Which sourdough starter rises fastest in a cold kitchen?")
    assert answer.answer == REFUSAL and answer.mode == "generative"
    assert answer.check is not None and answer.check["refused"] and answer.grounded
