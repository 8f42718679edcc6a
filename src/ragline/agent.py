"""The query path, one stage after another: retrieve (the question made standalone, then searched), then answer.

``stream`` is ``retrieve`` then ``answer``; a Serve generator replica calls ``answer`` alone, with the hits a
retriever replica found (ragline.serving).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from typing import Any

from ragline.answer.answerer import Answerer
from ragline.answer.conversation import fit_history
from ragline.config import AnswerSettings, LLMSettings
from ragline.embed.base import Embedder
from ragline.generate.base import Generator
from ragline.records import Answer, Done, Event, Hit, Query
from ragline.retrieve import Retriever


class Agent(Answerer):
    """The answer stage (ragline.answer.answerer) with the retriever in front of it."""

    def __init__(
        self,
        retriever: Retriever,
        generator: Generator,
        settings: LLMSettings,
        answer: AnswerSettings | None = None,
        embedder: Embedder | None = None,
    ) -> None:
        super().__init__(generator, settings, answer, embedder if embedder is not None else retriever.embedder)
        self.retriever = retriever

    def warm_up(self) -> None:
        self.retriever.warm_up()
        self.generator.warm_up()

    def retrieve(self, query: Query) -> tuple[str, list[Hit]]:
        """(what was searched for, the hits): ``query.search_query`` when a caller made it, else the question
        made standalone from the turns of ``query.history`` the model will see."""
        searched = query.search_query
        if not searched:
            turns = fit_history(query.history, self.generator)[0] if query.history else []
            searched = self.search_query(query.question, turns) if turns else query.question
        hits = self.retriever.search(searched, self.depth.k(query), filters=query.filters, tenant=query.tenant)
        return searched, hits

    def stream(self, query: Query) -> Iterator[Event]:
        """Retrieve, then stream the answer: Retrieved, a Draft in auto mode, Token..., Done."""
        started = time.perf_counter()
        searched, hits = self.retrieve(query)
        yield from self.answer(dataclasses.replace(query, search_query=searched), hits, started=started)

    def ask(self, query: Query | str, **fields: Any) -> Answer:
        """The whole answer to ``query`` (a Query, or a question with Query.of's keyword fields; no draft is
        made for a question, since nobody sees it)."""
        asked = query if isinstance(query, Query) else Query.of(query, **{"draft": False, **fields})
        for event in self.stream(asked):
            if isinstance(event, Done):
                return event.answer
        raise AssertionError("stream ended without an answer")  # pragma: no cover
