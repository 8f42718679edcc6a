"""The draft: in auto mode the extract is sent at once, while the model writes, and the model's answer (or the
extract again, when the model's fails its check or the model is down) follows and replaces it. Plumbing with a
scripted model; the real model and servers are in tests/api (the serving contract) and tests/answer."""

from __future__ import annotations

from typing import Any

from fakes import ScriptedGenerator

from ragline.agent import Agent
from ragline.answer.compose import NO_EVIDENCE
from ragline.config import AnswerSettings, LLMSettings
from ragline.embed.base import Embedder
from ragline.errors import LLMUnavailableError
from ragline.records import Done, Draft, Event, Query, Retrieved, Token

from .conftest import hit

TEXTS = [
    "To use a Qdrant server instead of the embedded engine, set RAGLINE_QDRANT_URL to the server's address.",
    "The collection name is ragline unless a setting says otherwise.",
]
QUESTION = "How do I use a Qdrant server instead of the embedded engine?"
REPLY = "Set `RAGLINE_QDRANT_URL` to the server's address [1]."


class _Fixed:
    def __init__(self, texts: list[str]) -> None:
        self.hits = [hit(t, source=f"https://docs.example/p{n}") for n, t in enumerate(texts, start=1)]

    def search(self, query: str, k: int | None = None, **_: Any) -> list[Any]:
        return self.hits


def _agent(embedder: Embedder, model: ScriptedGenerator, texts: list[str] = TEXTS, **answer: Any) -> Agent:
    settings = LLMSettings(model_path="/models/capable.gguf")
    return Agent(_Fixed(texts), model, settings, AnswerSettings(**answer), embedder)  # type: ignore[arg-type]


def _events(agent: Agent, **options: Any) -> list[Event]:
    return list(agent.stream(Query.of(QUESTION, **options)))


def _kinds(events: list[Event]) -> list[str]:
    return [type(e).__name__ for e in events]


def test_auto_sends_the_extract_first_then_the_model_answer_that_replaces_it(embedder: Embedder) -> None:
    events = _events(_agent(embedder, ScriptedGenerator(REPLY)))
    assert _kinds(events) == ["Retrieved", "Draft", "Token", "Done"]
    draft, done = events[1], events[-1]
    assert isinstance(draft, Draft) and isinstance(done, Done)
    assert "RAGLINE_QDRANT_URL" in draft.text and "[1]" in draft.text  # the extract, cited
    answer = done.answer
    assert answer.mode == "generative" and answer.answer == REPLY and answer.answer != draft.text
    assert 0 <= answer.timings["draft"] <= answer.timings["total"]


def test_when_the_model_answer_is_not_kept_the_extract_that_was_the_draft_is_the_answer(embedder: Embedder) -> None:
    invented = "Call `ragline.connect_cluster()` with the `qdrant_endpoint_override` flag [1]."
    events = _events(_agent(embedder, ScriptedGenerator(invented)))
    draft, done = events[1], events[-1]
    assert isinstance(draft, Draft) and isinstance(done, Done)
    assert done.answer.fallback and done.answer.mode == "extractive"
    assert done.answer.answer == draft.text
    tokens = [e.text for e in events if isinstance(e, Token)]
    assert "".join(tokens) == draft.text  # what replaces the draft is shown again whole


def test_a_model_that_is_down_leaves_the_draft_as_the_answer(embedder: Embedder) -> None:
    model = ScriptedGenerator(REPLY, fail=LLMUnavailableError("connection refused"))
    events = _events(_agent(embedder, model))
    assert _kinds(events) == ["Retrieved", "Draft", "Token", "Done"]
    done = events[-1]
    assert isinstance(done, Done) and done.answer.fallback and done.answer.answer == events[1].text  # type: ignore[union-attr]


def test_no_draft_when_turned_off_asked_off_or_nothing_would_replace_it(embedder: Embedder) -> None:
    off = _agent(embedder, ScriptedGenerator(REPLY), draft=False)
    assert "Draft" not in _kinds(_events(off))
    on = _agent(embedder, ScriptedGenerator(REPLY))
    assert "Draft" not in _kinds(_events(on, draft=False))
    assert _kinds(_events(on, mode="extractive")) == ["Retrieved", "Token", "Done"]
    # generative streams the model's own words as they come: they are the first words
    assert "Draft" not in _kinds(_events(on, mode="generative"))
    # a whole answer asked for at once makes no draft: nobody would see it
    assert "draft" not in on.ask(QUESTION).timings


def test_no_draft_when_the_extract_would_say_the_documentation_does_not_answer(embedder: Embedder) -> None:
    unrelated = ["Chapter 2 describes the colour of the harbour lights at dusk, in some detail."]
    agent = _agent(embedder, ScriptedGenerator(REPLY), unrelated)
    events = _events(agent)
    assert not any(isinstance(e, Draft) for e in events)
    assert agent.extract(agent.select(QUESTION, _Fixed(unrelated).hits, sections=True))[0] == NO_EVIDENCE
    assert isinstance(events[0], Retrieved)
