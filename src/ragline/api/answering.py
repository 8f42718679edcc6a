"""The answer path both engines run next to the model: Agent.stream, with chat history fitted into the window.

Runs in the uvicorn process (in-process engine) and inside the generator replica (Ray Serve engine), so both
engines give the same Answer for the same hits.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from ragline.agent import DEFAULT_OPTIONS, Agent, AnswerOptions, Event
from ragline.config import AnswerSettings, LLMSettings
from ragline.embed.base import Embedder
from ragline.generate.base import Delta, Generation, Generator, Message
from ragline.records import Answer, Citation, Hit, Usage
from ragline.retrieve import Retriever

# Earlier chat turns may take at most this share of the context window; the oldest go first.
HISTORY_SHARE = 0.25
_MESSAGE_OVERHEAD = 4  # tokens a chat template adds around one message


class GivenHits(Retriever):
    """A Retriever that returns the hits another process (the retrieval deployment) already found."""

    def __init__(self, hits: Sequence[Hit]) -> None:  # no store or embedder: nothing to search
        self.hits = list(hits)

    def warm_up(self) -> None:
        return None

    def search(
        self,
        query: str,
        k: int | None = None,
        *,
        filters: Mapping[str, Any] | None = None,
        score_threshold: float | None = None,
        tenant: str | None = None,
    ) -> list[Hit]:
        return self.hits


class _Narrowed:
    """A generator whose context window leaves room for history the prompt builder does not count."""

    def __init__(self, inner: Generator, reserved: int) -> None:
        self.inner = inner
        self.name = inner.name
        self.context_window = inner.context_window - reserved

    def warm_up(self) -> None:
        self.inner.warm_up()

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def generate(self, messages: list[Message], *, max_tokens: int, temperature: float) -> Generation:
        return self.inner.generate(messages, max_tokens=max_tokens, temperature=temperature)

    def stream(self, messages: list[Message], *, max_tokens: int, temperature: float) -> Iterator[Delta]:
        return self.inner.stream(messages, max_tokens=max_tokens, temperature=temperature)

    def check(self) -> None:
        self.inner.check()


def fit_history(history: Sequence[Message], generator: Generator) -> tuple[list[Message], int]:
    """The most recent turns that fit in HISTORY_SHARE of the window, and the tokens they take."""
    budget = int(generator.context_window * HISTORY_SHARE)
    kept: list[Message] = []
    used = 0
    for message in reversed(history):
        cost = generator.count_tokens(message.get("content", "")) + _MESSAGE_OVERHEAD
        if used + cost > budget:
            break
        kept.append(message)
        used += cost
    return kept[::-1], used


def answer_events(
    retriever: Retriever,
    generator: Generator,
    llm: LLMSettings,
    question: str,
    k: int | None = None,
    filters: Mapping[str, Any] | None = None,
    *,
    tenant: str | None = None,
    history: Sequence[Message] = (),
    answer: AnswerSettings | None = None,
    embedder: Embedder | None = None,
    options: AnswerOptions = DEFAULT_OPTIONS,
    search_query: str | None = None,
) -> Iterator[Event]:
    """Retrieved, Token..., Done for ``question``; ``history`` (earlier turns) never overflows the window."""
    kept, reserved = fit_history(history, generator) if history else ([], 0)
    model: Generator = _Narrowed(generator, reserved) if reserved else generator
    agent = Agent(retriever, model, llm, answer, embedder)
    return agent.stream(
        question,
        k,
        filters,
        tenant=tenant,
        history=kept or None,
        mode=options.mode,
        max_tokens=options.max_tokens,
        search_query=search_query,
    )


RETRIEVAL_ONLY_NOTICE = (
    "The language model is unavailable, so there is no written answer; these are the passages of the "
    "documentation that best match the question."
)


def retrieval_only(question: str, citations: list[Citation], timings: dict[str, float]) -> Answer:
    """The answer given when the language model is down and the server is set to fall back to citations."""
    return Answer(
        question=question,
        answer=RETRIEVAL_ONLY_NOTICE,
        citations=citations,
        llm="none (retrieval only: the language model is unavailable)",
        timings=timings,
        usage=Usage(),
    )
