"""What the HTTP app needs from the query path (a QueryBackend), and the in-process implementation.

Two implementations: ``InProcessBackend`` (here) runs retrieval and generation in this process, for
``--engine uvicorn`` and for the benchmark's in-process figures; ``RayServeBackend`` (ragline.serving.backend) calls
the retrieval and generation deployments through Ray Serve handles.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
from collections.abc import AsyncGenerator, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, cast

import anyio
import anyio.to_thread
import numpy as np

from ragline.answer.answerer import Answerer, Depth
from ragline.components import Components
from ragline.config import Settings
from ragline.embed.base import Embedder
from ragline.errors import EmptyIndexError, RaglineError
from ragline.ops.delete import DeleteReport, Scope, delete_sources
from ragline.ops.sources import SourceList, list_sources
from ragline.records import Event, Hit, Query

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Served:
    """What a backend serves, as the OpenAI-compatible routes name and bound it."""

    embedding_model: str  # the index's embedding model, as the index records it
    embedding_aliases: tuple[str, ...]  # other names a client may give it (the configured name, its last part)
    max_answer_tokens: int  # the server's own answer limit (llm.max_tokens)
    llm: str | None = None  # the generator's name (as answers carry it); None when it cannot be built
    depth: Depth | None = None  # how many hits an answer is made from when a request sets no k (None: k)

    @classmethod
    def of(cls, settings: Settings) -> Served:
        from ragline.generate import make_generator

        model_id = Components(settings).model_id
        configured = settings.embedding.model
        aliases = tuple(dict.fromkeys(n for n in (configured, model_id.rsplit("/", 1)[-1]) if n != model_id))
        try:
            generator = make_generator(settings.llm)  # cheap: no model loads
        except RaglineError:
            return cls(model_id, aliases, settings.llm.max_tokens)
        depth = Answerer(generator, settings.llm, settings.answer).depth
        return cls(model_id, aliases, settings.llm.max_tokens, generator.name, depth)

    def answer_k(self, query: Query) -> int | None:
        """The hits to retrieve for an answer to ``query``."""
        return self.depth.k(query) if self.depth is not None else query.k

    def embedding_names(self) -> tuple[str, ...]:
        return (self.embedding_model, *self.embedding_aliases)


class QueryBackend(Protocol):
    """Retrieval, streamed answers and readiness, wherever they run."""

    name: str
    served: Served

    async def start(self) -> None:
        """Load what requests need (index, models); called once before serving."""

    async def search(self, query: Query) -> list[Hit]:
        """The top ``query.k`` hits for ``query.question``, of ``query.tenant``'s chunks when it is set."""

    def stream(self, query: Query) -> AsyncGenerator[Event, None]:
        """Retrieved, Token..., Done; errors raise (RaglineError subclasses)."""

    async def embed(self, texts: Sequence[str]) -> tuple[np.ndarray, int]:
        """(one vector per text, tokens read) with the index's embedding model."""

    async def check_index(self) -> None:
        """Raise when the index cannot serve searches."""

    async def delete_sources(self, prefix: str, scope: Scope) -> DeleteReport:
        """Delete every chunk whose source is under ``prefix``, within ``scope``, from the index being served."""

    async def sources(self, tenant: str | None, limit: int) -> SourceList:
        """The first ``limit`` sources of ``tenant``'s documents (every document's when None), sorted."""

    async def check_llm(self) -> None:
        """Raise LLMUnavailableError when the language model cannot answer."""

    async def close(self) -> None:
        """Release the index and models."""


class InProcessBackend:
    """The query path in this process; blocking calls run in worker threads."""

    name = "in-process"

    def __init__(self, components: Components) -> None:
        self.components = components
        self.served = Served.of(components.settings)
        self.answer_threads: anyio.CapacityLimiter | None = None

    async def start(self) -> None:
        # Answers get worker threads of their own (as many as may run at once), so that searches and probes,
        # on the default pool, never wait behind a saturated language model.
        self.answer_threads = anyio.CapacityLimiter(self.components.settings.serve.max_concurrent_answers)
        await anyio.to_thread.run_sync(self._start)

    def _start(self) -> None:
        self.components.open_for_reading()
        self.components.retriever.warm_up()
        try:
            self.components.generator.warm_up()
        except RaglineError as e:  # readiness reports it; retrieval can still serve
            log.warning("the language model is not ready: %s", e)

    async def search(self, query: Query) -> list[Hit]:
        retriever = self.components.retriever
        return await anyio.to_thread.run_sync(
            lambda: retriever.search(query.question, query.k, filters=query.filters, tenant=query.tenant)
        )

    def stream(self, query: Query) -> AsyncGenerator[Event, None]:
        agent = self.components.agent
        return iterate_in_thread(lambda: agent.stream(query), limiter=self.answer_threads)

    async def embed(self, texts: Sequence[str]) -> tuple[np.ndarray, int]:
        return await anyio.to_thread.run_sync(embed_texts, self.components.embedder, texts)

    async def check_index(self) -> None:
        await anyio.to_thread.run_sync(_check_store, self.components)

    async def delete_sources(self, prefix: str, scope: Scope) -> DeleteReport:
        store = self.components.store
        return await anyio.to_thread.run_sync(delete_sources, store, prefix, scope)

    async def sources(self, tenant: str | None, limit: int) -> SourceList:
        return await anyio.to_thread.run_sync(list_sources, self.components.store, tenant, limit)

    async def check_llm(self) -> None:
        await anyio.to_thread.run_sync(self.components.generator.check)

    async def close(self) -> None:
        await anyio.to_thread.run_sync(self.components.close)

    def generation(self) -> dict[str, Any] | None:
        """The index generation served and the one published (None without generations)."""
        from ragline.store.following import served_generation

        return served_generation(self.components.store)


async def generation_of(backend: QueryBackend) -> dict[str, Any] | None:
    """What a backend says of the index generation it serves (a backend without generations: None); the
    Ray Serve backend asks the replica that retrieves."""
    report = getattr(backend, "generation", None)
    if not callable(report):
        return None
    found = report()
    return cast(dict[str, Any] | None, await found if inspect.isawaitable(found) else found)


def embed_texts(embedder: Embedder, texts: Sequence[str]) -> tuple[np.ndarray, int]:
    """Texts as documents are embedded for the index (its document prefix, if any), and the tokens read."""
    vectors = np.asarray(embedder.embed_documents(list(texts)), dtype=np.float32)
    return vectors, sum(min(embedder.count_tokens(t), embedder.max_tokens) for t in texts)


def _check_store(components: Components) -> None:
    if components.store.count() == 0:
        raise EmptyIndexError("the index holds no chunks")


_END = object()


async def iterate_in_thread(
    make: Callable[[], Iterator[T]], limiter: anyio.CapacityLimiter | None = None
) -> AsyncGenerator[T, None]:
    """Iterate a blocking iterator from async code, one ``next()`` per worker-thread call.

    A cancelled consumer (timeout, client gone) does not wait for the current step: the iterator is
    closed in the background once that step ends, which frees the model or the HTTP connection.
    """
    lock = threading.Lock()  # next() and close() never overlap
    it: Iterator[T] | None = None
    finished = False

    def step() -> Any:
        nonlocal it
        with lock:
            if it is None:
                it = make()
            return next(it, _END)

    def close() -> None:
        with lock:
            close_it = getattr(it, "close", None)
            if close_it is not None:
                close_it()

    try:
        while True:
            item = await anyio.to_thread.run_sync(step, abandon_on_cancel=True, limiter=limiter)
            if item is _END:
                finished = True
                return
            yield item
    finally:
        if not finished:
            asyncio.get_running_loop().run_in_executor(None, close)
