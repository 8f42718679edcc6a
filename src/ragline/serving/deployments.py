"""The Ray Serve deployments: retrieval and generation scale apart, composed through handles behind the ingress.

    Ingress (the FastAPI app of ragline.api, no logic of its own; its backend is ragline.serving.backend)
      -> Retriever deployment: embedder + index; search()
      -> Generator deployment: the language model; answer() streams Retrieved, Token..., Done from given hits

With ``serve.retriever.placement = "ingress"`` there is no Retriever deployment: each ingress replica holds the
embedder and the index itself (one Serve call less per request). Each replica that retrieves serves a private
copy of a local index (ragline.serving.replica_copy; a Qdrant server, ``qdrant.url``, is shared instead): on the
embedded index it copies and moves to each generation as it is published, within a second or two.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import sys
from collections.abc import AsyncGenerator, Iterator
from typing import Any, cast

import numpy as np
from ray import serve
from ray.serve.handle import DeploymentHandle

from ragline.answer.answerer import Answerer
from ragline.api.app import create_app
from ragline.api.backend import Served, embed_texts, iterate_in_thread
from ragline.components import Components
from ragline.config import Settings
from ragline.embed import make_embedder
from ragline.errors import EmptyIndexError, RaglineError
from ragline.generate import make_generator
from ragline.observability.logging import configure_logging
from ragline.observability.tracing import adopt, adopted, configure_tracing
from ragline.ops.delete import DeleteReport, Scope, delete_sources
from ragline.ops.sources import SourceList, list_sources
from ragline.records import Event, Hit, Query
from ragline.serving.backend import HandleRetrieval, RayServeBackend, Retrieval
from ragline.serving.replica_copy import follow_published, private_index
from ragline.store.following import served_generation
from ragline.store.readers import PrivateCopy

log = logging.getLogger(__name__)


class ReplicaRetriever:
    """The embedder and the index as a replica holds them: a Retriever replica's, or an ingress replica's
    when retrieval runs in the ingress (``serve.retriever.placement``)."""

    def __init__(self, settings: Settings) -> None:
        self.snapshot: PrivateCopy | None = None
        if settings.qdrant.path:  # qdrant-client's local mode: no generations, a copy taken now
            settings, self.snapshot = private_index(settings)
        self.components = Components(settings)
        # the embedded index: each generation published, recorded under this replica's name
        self.follows = follow_published(self.components.store, _reader_name())
        self.components.open_for_reading()
        self.retriever = self.components.retriever
        self.retriever.warm_up()
        self.retriever.embedder.embed_query("warm up")  # the first call pays for lazy initialisation
        self.searches_locally = not settings.qdrant.url

    async def search(self, query: Query, context: dict[str, str] | None = None) -> list[Hit]:
        """On a local index, searches on the replica's event loop: a search is a few milliseconds of CPU, and
        handing it to a worker thread and back cost about 0.6 ms per request here. Such a replica runs one
        search at a time; replicas are how retrieval scales. A search that waits on a Qdrant server runs in
        a thread, so the replica's other requests go on meanwhile."""
        if self.searches_locally:
            return self._search(query, context)
        return await asyncio.to_thread(self._search, query, context)

    def _search(self, query: Query, context: dict[str, str] | None) -> list[Hit]:
        with adopt(context):  # the ingress's request id and trace
            return self.retriever.search(query.question, query.k, filters=query.filters, tenant=query.tenant)

    async def embed(self, texts: list[str]) -> tuple[np.ndarray, int]:
        """Texts embedded for /v1/embeddings, in a worker thread: a batch is more CPU than one search."""
        return await asyncio.to_thread(embed_texts, self.retriever.embedder, texts)

    async def check(self) -> int:
        count = self.components.store.count()
        if count == 0:
            raise EmptyIndexError("the index holds no chunks")
        return count

    async def generation(self) -> dict[str, Any] | None:
        """The index generation this replica serves and the one published, naming the replica."""
        report = served_generation(self.components.store)
        return {**report, "replica": _replica_name()} if report is not None else None

    async def delete_sources(self, prefix: str, scope: Scope) -> DeleteReport:
        """Only called when one replica's delete reaches them all: on a shared Qdrant server, or on the
        embedded index, where it publishes a new generation that every replica follows."""
        return await asyncio.to_thread(delete_sources, self.components.store, prefix, scope)

    async def sources(self, tenant: str | None, limit: int) -> SourceList:
        """Read from this replica's copy of the index, in a thread: a listing reads every document."""
        return await asyncio.to_thread(list_sources, self.components.store, tenant, limit)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.components.close()
        if self.snapshot is not None:
            self.snapshot.release()
            self.snapshot = None


@serve.deployment(name="Retriever")
class RetrieverDeployment(ReplicaRetriever):
    """Retrieval as a deployment of its own; many replicas can serve at once."""

    def __init__(self, settings: Settings) -> None:
        replica_observability(settings)
        super().__init__(settings)

    def __del__(self) -> None:
        self.close()


@serve.deployment(name="Generator")
class GeneratorDeployment:
    """The language model: builds the prompt from the given hits (with its own tokenizer) and streams."""

    def __init__(self, settings: Settings) -> None:
        replica_observability(settings)
        self.generator = make_generator(settings.llm)
        # The evidence and the grounding check score sentences with the index's embedding model.
        embedder = make_embedder(settings.embedding)
        embedder.warm_up()
        self.answerer = Answerer(self.generator, settings.llm, settings.answer, embedder)
        try:
            self.generator.warm_up()
        except RaglineError as e:  # readiness reports it; the replica stays up for when the LLM comes back
            log.warning("the language model is not ready: %s", e)

    async def condense(self, query: Query) -> str:
        """The follow-up question made standalone for retrieval (the model rewrites it when capable)."""
        return await asyncio.to_thread(self.answerer.search_query, query.question, query.history)

    async def answer(
        self, query: Query, hits: list[Hit], context: dict[str, str] | None = None
    ) -> AsyncGenerator[Event, None]:
        """The answer from the hits the ingress retrieved. Each model step in a worker thread: a blocking
        generator on the replica's event loop would stall every other request there (Serve's gRPC path
        iterates sync generators on the loop)."""

        def events() -> Iterator[Event]:
            # each step under the ingress's request id and trace
            return adopted(context, self.answerer.answer(query, hits))

        async for event in iterate_in_thread(events):
            yield event

    def check(self) -> None:
        self.generator.check()


@serve.deployment(name="Ingress")
@serve.ingress()
class IngressDeployment:
    """The FastAPI app of ragline.api over the Generator's handle and retrieval: the Retriever's handle, or in
    this replica (``serve.retriever.placement``)."""

    def __init__(self, retriever: DeploymentHandle | None, generator: DeploymentHandle, settings: Settings) -> None:
        replica_observability(settings)
        if settings.serve.fast_path:
            # Handles are made in the driver, whose Serve was imported before the fast path was chosen, so they
            # default to actor calls; ask for the fast path's gRPC channel between replicas explicitly.
            generator = generator.options(_by_reference=False)
            retriever = retriever.options(_by_reference=False) if retriever is not None else None
        # No retriever handle: retrieval runs here (serve.retriever.placement = "ingress").
        self.local = ReplicaRetriever(settings) if retriever is None else None
        retrieval: Retrieval = HandleRetrieval(retriever) if retriever is not None else cast(Retrieval, self.local)
        self.backend = RayServeBackend(
            retrieval,
            generator,
            served=Served.of(settings),
            shared_index=bool(settings.qdrant.url),
            # the embedded index's generations, or a Qdrant server's alias (a qdrant-client path: copies, none)
            generations=settings.data_dir if settings.qdrant.url or not settings.qdrant.path else None,
        )
        self.settings = settings

    def __serve_build_asgi_app__(self) -> Any:
        return create_app(self.backend, self.settings.serve, citation_base_url=self.settings.answer.citation_base_url)

    def __del__(self) -> None:
        if self.local is not None:
            self.local.close()


def _reader_name() -> str:
    """This replica's name in the reader records (host and pid outside a replica)."""
    return _replica_name() or f"{socket.gethostname()}-{os.getpid()}"


def _replica_name() -> str | None:
    try:
        return str(serve.get_replica_context().replica_id.to_full_id_str())
    except Exception:  # outside a replica (a test calling the class directly)
        return None


def replica_observability(settings: Settings) -> None:
    """In a replica: tracing as configured, and ragline's log lines (JSON by default, with the request id the
    ingress passed along) on the worker's real stderr, which Ray keeps in the worker's log file. Serve's own
    logger stays as Serve configures it (``logging_config`` in the deployment settings' options)."""
    configure_tracing(settings.observability)
    stream = sys.__stderr__ or sys.stderr  # Serve redirects sys.stderr into its own logger
    configure_logging(settings.observability.log_format, logging.WARNING, stream, ragline_level=logging.INFO)
