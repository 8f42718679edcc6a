"""The query path: retrieve -> prompt -> generate -> an Answer whose [n] markers point at citations."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ragline.config import LLMSettings
from ragline.generate.base import Generator
from ragline.generate.prompt import build_messages
from ragline.observability.tracing import traced
from ragline.records import Answer, Citation, Hit, Usage
from ragline.retrieve import Retriever

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Token:
    """A piece of the answer as the model produces it."""

    text: str


@dataclass(slots=True)
class Retrieved:
    """The blocks the answer will cite, known before the first token."""

    citations: list[Citation]


@dataclass(slots=True)
class Done:
    answer: Answer


Event = Token | Retrieved | Done


class Agent:
    def __init__(self, retriever: Retriever, generator: Generator, settings: LLMSettings) -> None:
        self.retriever = retriever
        self.generator = generator
        self.settings = settings

    def warm_up(self) -> None:
        self.retriever.warm_up()
        self.generator.warm_up()

    def ask(
        self,
        question: str,
        k: int | None = None,
        filters: Mapping[str, Any] | None = None,
        *,
        tenant: str | None = None,
        history: list[dict[str, str]] | None = None,
    ) -> Answer:
        for event in self.stream(question, k, filters, tenant=tenant, history=history):
            if isinstance(event, Done):
                return event.answer
        raise AssertionError("stream ended without an answer")  # pragma: no cover

    def stream(
        self,
        question: str,
        k: int | None = None,
        filters: Mapping[str, Any] | None = None,
        *,
        tenant: str | None = None,
        history: list[dict[str, str]] | None = None,
    ) -> Iterator[Event]:
        """Retrieve, then stream the answer: Retrieved, Token..., Done.

        ``history`` holds earlier chat turns (role/content); they go before the question as context.
        """
        t0 = time.perf_counter()
        hits = self.retriever.search(question, k, filters=filters, tenant=tenant)
        t1 = time.perf_counter()
        messages, used = self._prompt(question, hits)
        if history:
            messages = [messages[0], *history, *messages[1:]]
        citations = [Citation(n, h) for n, h in enumerate(used, start=1)]
        yield Retrieved(citations)

        parts: list[str] = []
        usage = Usage()
        t_first: float | None = None
        for delta in traced(
            "generate",
            self.generator.stream(messages, max_tokens=self.settings.max_tokens, temperature=self.settings.temperature),
            model=self.generator.name,
        ):
            if delta.text:
                t_first = t_first or time.perf_counter()
                parts.append(delta.text)
                yield Token(delta.text)
            if delta.usage is not None:
                usage = delta.usage
        t2 = time.perf_counter()
        timings = {"retrieve": t1 - t0, "generate": t2 - t1, "total": t2 - t0}
        if t_first is not None:
            timings["first_token"] = t_first - t0
        answer = Answer(
            question=question,
            answer="".join(parts).strip(),
            citations=citations,
            llm=self.generator.name,
            timings=timings,
            usage=usage,
        )
        yield Done(answer)

    def _prompt(self, question: str, hits: list[Hit]) -> tuple[list[dict[str, str]], list[Hit]]:
        return build_messages(
            question,
            hits,
            count_tokens=self.generator.count_tokens,
            context_window=self.generator.context_window,
            max_answer_tokens=self.settings.max_tokens,
        )
