"""The QueryBackend of the Ray Serve ingress: retrieval (the Retriever deployment's handle, or in the ingress
replica itself) and generation (the Generator deployment's handle). The in-process backend is
ragline.api.backend; the deployments that use this one are in ragline.serving.deployments.

A call whose replica died is sent again, up to ``REPLICA_RETRIES`` times, as long as nothing of its answer
reached the client; errors leave as ragline errors, never as Ray's own.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar, cast

import numpy as np
from ray.exceptions import RayActorError, RayTaskError, WorkerCrashedError
from ray.serve.exceptions import BackPressureError, DeploymentUnavailableError, ReplicaUnavailableError
from ray.serve.handle import DeploymentHandle, DeploymentResponseGenerator

from ragline.api.backend import Served
from ragline.api.errors import NotSupportedError, ServiceUnavailableError
from ragline.config import Settings
from ragline.errors import RaglineError
from ragline.observability.tracing import carrier
from ragline.ops.delete import DeleteReport, Scope
from ragline.ops.sources import SourceList
from ragline.records import Done, Draft, Event, Hit, Query, Token
from ragline.store.generations import Generations
from ragline.store.readers import live_readers, summarise

log = logging.getLogger(__name__)

REPLICA_RETRIES = 2  # a request whose replica died is sent again (before any token reached the client)
_RETRY_PAUSE = 0.5

T = TypeVar("T")


class Retrieval(Protocol):
    """Retrieval as the ingress reaches it: a ReplicaRetriever in its own process, or HandleRetrieval."""

    async def search(self, query: Query, context: dict[str, str] | None = None) -> list[Hit]: ...

    async def embed(self, texts: Sequence[str]) -> tuple[np.ndarray, int]: ...

    async def check(self) -> int: ...

    async def delete_sources(self, prefix: str, scope: Scope) -> DeleteReport: ...

    async def sources(self, tenant: str | None, limit: int) -> SourceList: ...

    async def generation(self) -> dict[str, Any] | None: ...


class HandleRetrieval:
    """The Retriever deployment through its handle; a call whose replica died is sent again."""

    def __init__(self, handle: DeploymentHandle) -> None:
        self.handle = handle

    async def search(self, query: Query, context: dict[str, str] | None = None) -> list[Hit]:
        hits: list[Hit] = await _with_retries(lambda: self.handle.search.remote(query, context))
        return hits

    async def embed(self, texts: Sequence[str]) -> tuple[np.ndarray, int]:
        embedded: tuple[np.ndarray, int] = await _with_retries(lambda: self.handle.embed.remote(list(texts)))
        return embedded

    async def check(self) -> int:
        count: int = await _with_retries(lambda: self.handle.check.remote())
        return count

    async def delete_sources(self, prefix: str, scope: Scope) -> DeleteReport:
        report: DeleteReport = await _with_retries(lambda: self.handle.delete_sources.remote(prefix, scope))
        return report

    async def sources(self, tenant: str | None, limit: int) -> SourceList:
        listed: SourceList = await _with_retries(lambda: self.handle.sources.remote(tenant, limit))
        return listed

    async def generation(self) -> dict[str, Any] | None:
        """What one Retriever replica (the one the call reaches) serves."""
        report: dict[str, Any] | None = await _with_retries(lambda: self.handle.generation.remote())
        return report


class RayServeBackend:
    """A QueryBackend over retrieval (a deployment's handle, or in this replica) and the Generator's handle."""

    name = "ray-serve"

    def __init__(
        self,
        retrieval: Retrieval,
        generator: DeploymentHandle,
        *,
        served: Served | None = None,
        shared_index: bool = False,
        generations: Path | None = None,
    ) -> None:
        self.retrieval = retrieval
        self.generator = generator
        self.served = served or Served.of(Settings.model_construct())  # None: the default settings'
        self.shared_index = shared_index  # a Qdrant server every retriever replica queries
        # The data dir when replicas follow a published generation (the embedded index, or a Qdrant server's alias).
        self.generations = generations

    async def start(self) -> None:
        return None

    async def search(self, query: Query) -> list[Hit]:
        return await self.retrieval.search(query, carrier())

    async def stream(self, query: Query) -> AsyncGenerator[Event, None]:
        started = time.perf_counter()
        if query.history and query.search_query is None:
            made = await _with_retries(lambda: self.generator.condense.remote(query))
            query = dataclasses.replace(query, search_query=made)
        searched = dataclasses.replace(
            query, question=query.search_query or query.question, k=self.served.answer_k(query)
        )
        hits = await self.search(searched)
        retrieved = time.perf_counter()
        first_token: float | None = None
        drafted: float | None = None
        for attempt in range(REPLICA_RETRIES + 1):
            response = cast(
                DeploymentResponseGenerator[Event],
                self.generator.options(stream=True).answer.remote(query, hits, carrier()),
            )
            finished = False
            done: Done | None = None
            try:
                async for event in response:
                    if isinstance(event, Token) and first_token is None:
                        first_token = time.perf_counter()
                    elif isinstance(event, Draft) and drafted is None:
                        drafted = time.perf_counter()
                    elif isinstance(event, Done):
                        _ingress_timings(event, started, retrieved, first_token, drafted)
                        # Held until the replica's call has returned: a consumer that stops at Done would
                        # otherwise cancel a finished call, which Serve then counts and logs as cancelled.
                        done = event
                        continue
                    yield event
                finished = True
            except Exception as e:
                error = _unwrap(e)
                if isinstance(error, _ReplicaGone) and first_token is None and attempt < REPLICA_RETRIES:
                    log.warning("a generator replica failed (%s); trying again", e)
                    await asyncio.sleep(_RETRY_PAUSE)
                    continue
                raise _public(error) from None
            finally:
                if not finished:
                    response.cancel()  # the consumer left or failed: stop generating
            if done is not None:
                yield done
            return

    async def embed(self, texts: Sequence[str]) -> tuple[np.ndarray, int]:
        return await self.retrieval.embed(texts)

    async def check_index(self) -> None:
        await self.retrieval.check()

    async def delete_sources(self, prefix: str, scope: Scope) -> DeleteReport:
        if not (self.shared_index or self.generations):
            # Each retriever replica serves its own copy of a qdrant-client local index, taken at start: a
            # delete in one copy would leave the others (and the index on disk) serving the chunks.
            raise NotSupportedError(
                "the Ray Serve engine serves copies of a qdrant-client local index (qdrant.path): run "
                "`ragline delete --source PREFIX` while the service is stopped (or use the embedded index, "
                "--engine uvicorn, or a Qdrant server)"
            )
        # On the embedded index the replica that takes the call publishes a new generation; all follow it.
        return await self.retrieval.delete_sources(prefix, scope)

    async def generation(self) -> dict[str, Any] | None:
        """The generation served by every replica that retrieves, from their records in the data dir (without
        records, a read-only data dir or a Qdrant server's alias that every replica queries: the one replica
        that takes the call)."""
        if self.generations is None:
            return None
        try:
            if not self.shared_index:  # each replica follows the embedded index on a private copy: its record
                gens = Generations(self.generations)
                readers = await asyncio.to_thread(live_readers, gens.root)
                if readers:
                    return summarise(readers, gens.published())
            async with asyncio.timeout(5):
                return await self.retrieval.generation()
        except Exception as e:  # readiness and metrics report the index's state; this must not fail them
            log.warning("cannot tell the generation served: %s", e)
            return None

    async def sources(self, tenant: str | None, limit: int) -> SourceList:
        return await self.retrieval.sources(tenant, limit)

    async def check_llm(self) -> None:
        await _with_retries(lambda: self.generator.check.remote())

    async def close(self) -> None:
        return None


def _ingress_timings(
    done: Done, started: float, retrieved: float, first_token: float | None, drafted: float | None
) -> None:
    # The generator replica timed generation only; retrieval and totals are what this request saw.
    timings = done.answer.timings
    timings["retrieve"] = retrieved - started
    timings["total"] = time.perf_counter() - started
    if first_token is not None:
        timings["first_token"] = first_token - started
    if drafted is not None:
        timings["draft"] = drafted - started


class _ReplicaGone(Exception):
    """The replica serving a call died; another one (or its replacement) can take the call again."""


def _unwrap(exc: BaseException) -> BaseException:
    """The error a deployment raised, out of Ray's wrappers; replica deaths become _ReplicaGone."""
    if isinstance(exc, RayTaskError):
        cause = exc.cause
        if isinstance(cause, RaglineError):
            return cause
        return _unwrap(cause) if isinstance(cause, RayActorError | WorkerCrashedError) else exc
    if isinstance(exc, RayActorError | WorkerCrashedError | ReplicaUnavailableError):
        return _ReplicaGone(str(exc))
    if isinstance(exc, BackPressureError):
        return ServiceUnavailableError("the service is at capacity; retry in a moment")
    if isinstance(exc, DeploymentUnavailableError):
        return ServiceUnavailableError("a part of the service failed to start; see the server log")
    return exc


def _public(error: BaseException) -> BaseException:
    if isinstance(error, _ReplicaGone):
        return ServiceUnavailableError("a replica of the service failed; retry in a moment")
    return error


async def _with_retries(call: Callable[[], Awaitable[T]]) -> T:
    """Await a handle call, again when its replica died (calls are idempotent reads)."""
    for attempt in range(REPLICA_RETRIES + 1):
        try:
            return await call()
        except Exception as e:
            error = _unwrap(e)
            if isinstance(error, _ReplicaGone) and attempt < REPLICA_RETRIES:
                log.warning("a replica failed (%s); trying again", e)
                await asyncio.sleep(_RETRY_PAUSE)
                continue
            raise _public(error) from None
    raise AssertionError("unreachable")  # pragma: no cover
