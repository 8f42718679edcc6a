"""What every route shares: request limits, the request deadline, the retrieval-only fallback and metrics.

Sits between the routes and a QueryBackend, so both engines behave the same at the edge.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from typing import Any

import numpy as np
from fastapi.responses import JSONResponse, Response

from ragline.api import sse
from ragline.api.backend import QueryBackend
from ragline.api.errors import RequestTimeoutError, describe
from ragline.api.limits import AnswerSlots, Slot
from ragline.api.metrics import Metrics
from ragline.api.settings import ServeSettings
from ragline.errors import LLMTimeoutError, LLMUnavailableError
from ragline.limits import Bounds, check_query
from ragline.privacy import query_ref
from ragline.records import Answer, Citation, Done, Draft, Event, Hit, Query, Retrieved, Token, Usage

log = logging.getLogger(__name__)

READINESS_TIMEOUT = 10.0
RETRIEVAL_ONLY_NOTICE = (
    "The language model is unavailable, so there is no written answer; these are the passages of the "
    "documentation that best match the question."
)


class AnswerService:
    def __init__(self, backend: QueryBackend, settings: ServeSettings, metrics: Metrics) -> None:
        self.backend = backend
        self.settings = settings
        self.metrics = metrics
        self.slots = AnswerSlots(settings.max_concurrent_answers, settings.answers_per_tenant, settings.retry_after)
        self.bounds = Bounds(settings.max_query_chars, settings.max_k)  # a route may give its own

    def query_ref(self, text: str) -> str:
        """A question as log lines show it: verbatim only with ``serve.log_queries``."""
        return query_ref(text, verbatim=self.settings.log_queries)

    def check(self, query: Query, bounds: Bounds | None = None) -> None:
        """The server's own limits (``bounds``, or serve.max_query_chars and serve.max_k), stricter than the
        schema's, checked before any work: BadRequestError with the limit in it."""
        check_query(query, bounds or self.bounds)

    async def search(self, query: Query) -> list[Hit]:
        self.check(query)
        log.debug("search %s k=%s tenant=%s", self.query_ref(query.question), query.k, query.tenant)
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.settings.request_timeout):
                hits = await self.backend.search(query)
        except TimeoutError:
            raise RequestTimeoutError(f"the search took longer than {self.settings.request_timeout:g} s") from None
        self.metrics.retrieval_seconds.observe(time.perf_counter() - started)
        return hits

    async def events(self, query: Query) -> AsyncGenerator[Event, None]:
        """Retrieved, Token..., Done for a checked ``query``, within ``request_timeout``; with
        ``retrieval_only_fallback``, an LLM that is down or slow before the first token gives a Done carrying
        the citations alone."""
        log.debug(
            "question %s k=%s tenant=%s history=%d",
            self.query_ref(query.question),
            query.k,
            query.tenant,
            len(query.history),
        )
        started = time.perf_counter()
        deadline = asyncio.get_running_loop().time() + self.settings.request_timeout
        stream = self.backend.stream(query)
        citations: list[Citation] | None = None
        tokens = 0
        try:
            while True:
                # The deadline covers waiting for the backend only, never the consumer's sending.
                try:
                    async with asyncio.timeout_at(deadline):
                        event = await anext(stream, None)
                except TimeoutError:
                    raise RequestTimeoutError(
                        f"the answer took longer than {self.settings.request_timeout:g} s"
                    ) from None
                if event is None:
                    return
                if isinstance(event, Retrieved):
                    citations = event.citations
                elif isinstance(event, Token):
                    tokens += 1
                elif isinstance(event, Done):
                    self.metrics.observe_answer(event.answer)
                yield event
        except (LLMUnavailableError, LLMTimeoutError, RequestTimeoutError) as e:
            if not (self.settings.retrieval_only_fallback and citations is not None and tokens == 0):
                raise
            describe(e)  # logs why
            self.metrics.fallbacks.inc()
            elapsed = time.perf_counter() - started
            yield Done(retrieval_only(query.question, citations, {"total": elapsed}))
        finally:
            await stream.aclose()

    async def open_stream(self, query: Query, bounds: Bounds | None = None) -> AsyncGenerator[Event, None]:
        """events() for a streaming response, holding an answer slot until the stream ends.

        Waits here for the first token, at most ``sse_keepalive`` seconds, so that a bad request, a failed
        retrieval or an LLM that is down still get their HTTP status (nothing is sent before the first token
        anyway: citations follow the answer). A first token that takes longer is awaited by the stream itself,
        which sends keep-alive comments meanwhile; a failure then arrives as an error event.
        """
        self.check(query, bounds)
        slot = self.slots.acquire(query.tenant)
        events = self.events(query)
        loop = asyncio.get_running_loop()
        until = loop.time() + self.settings.sse_keepalive
        head: list[Event] = []
        pending: asyncio.Task[Event | None] | None = None
        try:
            while True:
                pending = asyncio.create_task(_next(events))
                done, _ = await asyncio.wait({pending}, timeout=max(0.0, until - loop.time()))
                if not done:
                    break  # late: the stream takes the pending step over
                event, pending = pending.result(), None
                if event is None:
                    break
                head.append(event)
                if not isinstance(event, Retrieved):
                    break
        except BaseException:
            await _cancel(pending)
            slot.release()
            await events.aclose()
            raise
        rest = self._continue(head, pending, events, slot)
        # A response that is never iterated (client gone before the body) must still free its slot.
        weakref.finalize(rest, slot.release)
        return rest

    async def _continue(
        self,
        head: list[Event],
        pending: asyncio.Task[Event | None] | None,
        events: AsyncGenerator[Event, None],
        slot: Slot,
    ) -> AsyncGenerator[Event, None]:
        self.metrics.streams.inc()
        try:
            for event in head:
                yield event
            if pending is not None:
                first, pending = await pending, None
                if first is None:
                    return
                yield first
            async for event in events:
                yield event
        finally:
            await _cancel(pending)
            self.metrics.streams.dec()
            slot.release()
            await events.aclose()

    async def respond(
        self,
        query: Query,
        stream: bool,
        whole: Callable[[Answer], dict[str, Any]],
        chunks: Callable[[AsyncIterator[str | Draft | Answer]], AsyncIterator[bytes]],
        on_error: Callable[[BaseException], list[bytes]],
        *,
        bounds: Bounds | None = None,
    ) -> Response:
        """The answer to ``query`` as a route shapes it: JSON (``whole``), or Server-Sent Events (``chunks`` over
        the answer's text pieces, then the Answer; ``on_error`` for a failure after the stream started)."""
        if not stream:
            return JSONResponse(whole(await self.answer(query, bounds)))
        events = await self.open_stream(query, bounds)
        return sse.response(chunks(pieces(events)), on_error, keepalive=self.settings.sse_keepalive)

    async def embed(self, texts: Sequence[str]) -> tuple[np.ndarray, int]:
        """(vectors, tokens read) for ``texts`` with the index's embedding model, within ``request_timeout``."""
        try:
            async with asyncio.timeout(self.settings.request_timeout):
                return await self.backend.embed(texts)
        except TimeoutError:
            raise RequestTimeoutError(f"embedding took longer than {self.settings.request_timeout:g} s") from None

    async def answer(self, query: Query, bounds: Bounds | None = None) -> Answer:
        self.check(query, bounds)
        slot = self.slots.acquire(query.tenant)
        try:
            async for event in self.events(query):
                if isinstance(event, Done):
                    return event.answer
        finally:
            slot.release()
        raise RuntimeError("the answer stream ended without an answer")

    async def readiness(self) -> tuple[bool, dict[str, str]]:
        """Whether the index and the language model can serve, each checked at once with a deadline."""

        async def run(name: str, check: Any) -> tuple[str, str]:
            try:
                async with asyncio.timeout(READINESS_TIMEOUT):
                    await check()
            except TimeoutError:
                return name, f"no answer within {READINESS_TIMEOUT:g} s"
            except Exception as e:
                return name, describe(e)[2]
            return name, "ok"

        results = await asyncio.gather(run("index", self.backend.check_index), run("llm", self.backend.check_llm))
        checks = dict(results)
        return all(v == "ok" for v in checks.values()), checks


async def pieces(events: AsyncGenerator[Event, None]) -> AsyncIterator[str | Draft | Answer]:
    """The draft, if any, then the answer's text as it comes, then the Answer itself."""
    streamed = False
    async for event in events:
        if isinstance(event, Draft):
            yield event
        elif isinstance(event, Token):
            streamed = True
            yield event.text
        elif isinstance(event, Done):
            if event.answer.answer and not streamed:  # a retrieval-only answer: its notice was never streamed
                yield event.answer.answer
            yield event.answer
        elif not isinstance(event, Retrieved):  # pragma: no cover - the Event union is closed
            raise TypeError(f"unexpected event {event!r}")


async def _next(events: AsyncGenerator[Event, None]) -> Event | None:
    return await anext(events, None)


async def _cancel(task: asyncio.Task[Any] | None) -> None:
    """Cancel a pending step and wait for it, so that its generator can be closed next."""
    if task is None:
        return
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


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
