"""How many retrieved blocks an answer is made from: a model that reads whole sections gets ``context_blocks`` of
them, every one in retrieval order (the page that answers is often not among the first four); the extract and
a tiny model keep the retriever's k and the best evidence blocks (plumbing, scripted model)."""

from __future__ import annotations

from typing import Any

import pytest
from fakes import ScriptedGenerator

from ragline.agent import Agent
from ragline.answer.answerer import Depth
from ragline.api.backend import Served
from ragline.config import AnswerSettings, LLMSettings
from ragline.embed.base import Embedder
from ragline.records import AnswerOptions, Hit, Query

from .conftest import hit

# One page that answers, then seven that share none of the question's words: each still reaches a model that
# reads sections, since an embedding's idea of "related" misses pages that answer in other words.
TEXTS = [
    "Set RAGLINE_QDRANT_URL to the server's address to use a Qdrant server instead of the embedded engine.",
    *(f"Chapter {n} describes the colour of the harbour lights at dusk, in some detail." for n in range(2, 9)),
]


class _Recording:
    """A retriever that returns the first ``k`` of its hits (5 by default) and records the k it was asked for."""

    def __init__(self, hits: list[Hit]) -> None:
        self.hits = hits
        self.asked: list[int | None] = []

    def search(self, query: str, k: int | None = None, **_: Any) -> list[Hit]:
        self.asked.append(k)
        return self.hits[: 5 if k is None else k]


def _agent(embedder: Embedder, *, capable: bool, **answer: Any) -> tuple[Agent, _Recording, ScriptedGenerator]:
    hits = [hit(t, source=f"https://docs.example/p{n}") for n, t in enumerate(TEXTS, start=1)]
    retriever = _Recording(hits)
    model = ScriptedGenerator("Set `RAGLINE_QDRANT_URL` to the server's address [1].", capable=capable)
    settings = LLMSettings(model_path="/models/capable.gguf")
    agent = Agent(retriever, model, settings, AnswerSettings(**answer), embedder)  # type: ignore[arg-type]
    return agent, retriever, model


QUESTION = "How do I use a Qdrant server instead of the embedded engine?"


def test_a_model_reading_sections_gets_every_block_in_order(embedder: Embedder) -> None:
    agent, retriever, model = _agent(embedder, capable=True)
    answer = agent.ask(QUESTION)
    assert retriever.asked == [8]  # AnswerSettings().context_blocks
    prompt = model.sent[0][-1]["content"]
    headers = [line for line in prompt.splitlines() if line.startswith("[")]
    assert [h.split("]")[0] for h in headers] == [f"[{n}" for n in range(1, 9)]
    assert [c.hit.chunk.source for c in answer.citations] == [f"https://docs.example/p{n}" for n in range(1, 9)]
    assert answer.mode == "generative"


def test_context_blocks_sets_the_depth(embedder: Embedder) -> None:
    agent, retriever, _ = _agent(embedder, capable=True, context_blocks=3)
    answer = agent.ask(QUESTION)
    assert retriever.asked == [3] and len(answer.citations) == 3


def test_a_request_k_wins(embedder: Embedder) -> None:
    agent, retriever, _ = _agent(embedder, capable=True)
    answer = agent.ask(QUESTION, k=2)
    assert retriever.asked == [2] and len(answer.citations) <= 2


@pytest.mark.parametrize("capable,mode", [(True, "extractive"), (False, "auto")])
def test_the_extract_and_a_tiny_model_keep_the_best_evidence(embedder: Embedder, capable: bool, mode: str) -> None:
    agent, retriever, _ = _agent(embedder, capable=capable)
    answer = agent.ask(QUESTION, mode=mode)
    assert retriever.asked == [None]  # the retriever's own k
    # the seven unrelated pages score far under the one that answers: the evidence keeps that one
    assert [c.hit.chunk.source for c in answer.citations] == ["https://docs.example/p1"]


def test_depth_rules() -> None:
    sections = Depth("auto", sections=True, blocks=8)
    assert sections.k(Query("q")) == 8
    assert sections.k(Query("q", k=3)) == 3
    assert sections.k(Query("q", options=AnswerOptions(mode="extractive"))) is None
    assert Depth("extractive", sections=True, blocks=8).k(Query("q")) is None
    assert Depth("extractive", sections=True, blocks=8).k(Query("q", options=AnswerOptions(mode="auto"))) == 8
    assert Depth("auto", sections=False, blocks=8).k(Query("q")) is None


def test_the_ray_ingress_retrieves_as_deep_as_the_answerer() -> None:
    # The ingress asks the retriever replicas for the hits; the generator replicas answer from them.
    served = Served("m", (), 64, "llama-cpp:x", Depth("auto", sections=True, blocks=6))
    assert served.answer_k(Query("q")) == 6 and served.answer_k(Query("q", k=2)) == 2
    assert Served("m", (), 64).answer_k(Query("q")) is None
