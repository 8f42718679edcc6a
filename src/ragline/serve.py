"""Ray Serve deployments: retrieval and generation scale apart, composed through handles behind the ingress.

    Ingress (the FastAPI app of ragline.api, no logic of its own)
      -> Retriever deployment: embedder + index; search()
      -> Generator deployment: the language model; answer() streams Retrieved, Token..., Done

Each deployment takes its replicas, CPUs and autoscaling from ``settings.serve``. With
``serve.retriever.placement = "ingress"`` there is no Retriever deployment: each ingress replica holds the
embedder and the index itself (one Serve call less per request) and is sized by the retriever's settings;
the language model stays a deployment of its own. Each replica that retrieves serves a private copy of a
local index taken when it starts (ragline.store.private_copy; a Qdrant server, ``qdrant.url``, is shared
instead): restart the service, or let Serve replace replicas, to serve what was ingested since.

The ingress's backend (handles, retries of calls whose replica died, errors) is ragline.api.ray_backend.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import sys
import time
from collections.abc import AsyncGenerator, Iterator
from pathlib import Path
from typing import Any, cast

import numpy as np
import ray
from ray import serve
from ray.serve.handle import DeploymentHandle

from ragline.agent import Agent, Event, Query
from ragline.api.answering import GivenHits
from ragline.api.app import create_app
from ragline.api.backend import Served, embed_texts, iterate_in_thread
from ragline.api.ray_backend import HandleRetrieval, RayServeBackend, Retrieval
from ragline.api.settings import ServeSettings
from ragline.components import Components
from ragline.config import Settings, load_settings
from ragline.embed import make_embedder
from ragline.errors import EmptyIndexError, RaglineError
from ragline.generate import make_generator
from ragline.observability.logging import configure_logging
from ragline.observability.tracing import adopt, adopted, configure_tracing
from ragline.ops.delete import DeleteReport, Scope, delete_sources
from ragline.ops.sources import SourceList, list_sources
from ragline.ray_local import set_serve_data_plane, start_local_ray
from ragline.records import Hit
from ragline.store.private_copy import private_index

log = logging.getLogger(__name__)

APP_NAME = "ragline"


# -- deployments -----------------------------------------------------------------------------------------


class ReplicaRetriever:
    """The embedder and the index as a replica holds them: a Retriever replica's, or an ingress replica's
    when retrieval runs in the ingress (``serve.retriever.placement``)."""

    def __init__(self, settings: Settings) -> None:
        self.snapshot: Path | None = None
        settings, self.snapshot = private_index(settings)
        self.components = Components(settings)
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

    async def delete_sources(self, prefix: str, scope: Scope) -> DeleteReport:
        """Only called when the index is a shared Qdrant server: one replica's delete serves them all."""
        return await asyncio.to_thread(delete_sources, self.components.store, prefix, scope)

    async def sources(self, tenant: str | None, limit: int) -> SourceList:
        """Read from this replica's copy of the index, in a thread: a listing reads every document."""
        return await asyncio.to_thread(list_sources, self.components.store, tenant, limit)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.components.close()
        if self.snapshot is not None:
            shutil.rmtree(self.snapshot, ignore_errors=True)
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
        self.llm = settings.llm
        self.answer_settings = settings.answer
        self.generator = make_generator(settings.llm)
        # The evidence and the grounding check score sentences with the index's embedding model.
        self.embedder = make_embedder(settings.embedding)
        self.embedder.warm_up()
        try:
            self.generator.warm_up()
        except RaglineError as e:  # readiness reports it; the replica stays up for when the LLM comes back
            log.warning("the language model is not ready: %s", e)

    def _agent(self, hits: list[Hit]) -> Agent:
        """The agent's path over hits the ingress already retrieved."""
        return Agent(GivenHits(hits), self.generator, self.llm, self.answer_settings, self.embedder)

    async def condense(self, query: Query) -> str:
        """The follow-up question made standalone for retrieval (the model rewrites it when capable)."""
        return await asyncio.to_thread(self._agent([]).search_query, query.question, query.history)

    async def answer(
        self, query: Query, hits: list[Hit], context: dict[str, str] | None = None
    ) -> AsyncGenerator[Event, None]:
        """Each model step in a worker thread: a blocking generator on the replica's event loop would stall
        every other request there (Serve's gRPC path iterates sync generators on the loop)."""
        agent = self._agent(hits)

        def events() -> Iterator[Event]:
            return adopted(context, agent.stream(query))  # each step under the ingress's request id and trace

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
            retrieval, generator, served=Served.of(settings), shared_index=bool(settings.qdrant.url)
        )
        self.settings = settings

    def __serve_build_asgi_app__(self) -> Any:
        return create_app(self.backend, self.settings.serve, citation_base_url=self.settings.answer.citation_base_url)

    def __del__(self) -> None:
        if self.local is not None:
            self.local.close()


def replica_observability(settings: Settings) -> None:
    """In a replica: tracing as configured, and ragline's log lines (JSON by default, with the request id the
    ingress passed along) on the worker's real stderr, which Ray keeps in the worker's log file. Serve's own
    logger stays as Serve configures it (``logging_config`` in the deployment settings' options)."""
    configure_tracing(settings.observability)
    stream = sys.__stderr__ or sys.stderr  # Serve redirects sys.stderr into its own logger
    configure_logging(settings.observability.log_format, logging.WARNING, stream, ragline_level=logging.INFO)


# -- running it ------------------------------------------------------------------------------------------


def build_app(settings: Settings) -> Any:
    """The bound Serve application: ingress -> (retriever, generator), each with its options from settings."""
    s = settings.serve
    settings = settings.model_copy(update={"data_dir": settings.data_dir.resolve()})  # replicas have other cwds
    common: dict[str, Any] = {"graceful_shutdown_timeout_s": s.graceful_shutdown_timeout}
    # The decorators make Deployments of the classes; mypy still sees the classes.
    generator = cast(Any, GeneratorDeployment).options(**s.generator.options(), **common).bind(settings)
    retriever = (  # None: retrieval runs in the ingress replicas
        cast(Any, RetrieverDeployment).options(**s.retriever.options(), **common).bind(settings)
        if s.retriever.placement == "deployment"
        else None
    )
    return cast(Any, IngressDeployment).options(**ingress_options(s), **common).bind(retriever, generator, settings)


def ingress_options(s: ServeSettings) -> dict[str, Any]:
    """The ingress's deployment options. When it retrieves itself, the retriever's replicas, CPUs and
    autoscaling size it, and it still takes requests and writes access lines as the ingress."""
    if s.retriever.placement != "ingress":
        return s.ingress.options()
    own = s.ingress.options()
    return {
        **s.retriever.options(),
        "max_ongoing_requests": own["max_ongoing_requests"],
        "logging_config": own["logging_config"],
    }


def app_builder(args: dict[str, Any]) -> Any:
    """The application for a Ray cluster: ``import_path: ragline.serve:app_builder`` in a RayService's
    serveConfigV2 (or ``serve run``). Settings come from the environment (``RAGLINE_*``) with ``args``,
    nested like the settings tree (e.g. ``{"retrieval": {"k": 8}}``), on top."""
    return build_app(load_settings(**args))


def run(settings: Settings, **ray_init: Any) -> str:
    """Start a local Ray on loopback (if needed), Serve on ``serve.host:port``, and the app; returns its URL."""
    start(settings, **ray_init)
    return deploy(settings)


def start(settings: Settings, **ray_init: Any) -> None:
    """A local Ray on loopback (unless this process joined one already) and Serve listening on the port."""
    s = settings.serve
    # Ray runs its workers at nice 15 by default, fine for batch jobs; replicas answering requests must not
    # lose the CPU to every other process on the machine.
    ray_init.setdefault("_system_config", {"worker_niceness": 0})
    ray_init.setdefault("runtime_env", {"worker_process_setup_hook": "ragline.ray_local.serve_replicas_on_loopback"})
    if ray.is_initialized():
        log.info("Ray is already running: Serve keeps the data plane it was started with")
    else:
        set_serve_data_plane(s.fast_path, s.drain_seconds)
    start_local_ray(num_cpus=s.num_cpus, **ray_init)
    serve.start(
        http_options={
            "host": s.host,
            "port": s.port,
            # a backstop above the app's own deadline, which answers first with a clear message
            "request_timeout_s": s.request_timeout + 30,
            "keep_alive_timeout_s": 30,
        }
    )


def deploy(settings: Settings) -> str:
    """Run the app on the started Serve and return its URL once the port routes to it."""
    s = settings.serve
    serve.run(build_app(settings), name=APP_NAME, route_prefix="/")
    url = f"http://{s.host}:{s.port}"
    _wait_for_routes(url.replace("0.0.0.0", "127.0.0.1"))
    return url


def _wait_for_routes(url: str, timeout: float = 60.0) -> None:
    """Return once the port routes to the app: HAProxy is listening before Serve has sent it the routes, and
    answers 404 for a moment after serve.run returns."""
    import httpx

    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            log.warning("%s/healthz does not answer yet; serving anyway", url)
            return
        time.sleep(0.2)


def shutdown() -> None:
    """Stop the app, then Serve. Deleting the app first drains it: the proxy stays up while each replica
    finishes the requests it holds (within graceful_shutdown_timeout); serve.shutdown alone drops them."""
    try:
        serve.delete(APP_NAME)
    except Exception:  # not running (failed start): nothing to drain
        log.debug("no app to delete", exc_info=True)
    serve.shutdown()
