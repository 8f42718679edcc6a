"""Prometheus metrics of one server process, and the ASGI middleware that counts requests.

Each app gets its own registry, so two apps in one process (tests) never share counters. Under Ray Serve,
``/metrics`` is served by an ingress replica and shows that replica's process: retrieval and generation
times are the ones the ingress sees (handle calls included for retrieval; generation as timed in the
generator replica and carried back in the answer's timings).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST as PROMETHEUS_CONTENT_TYPE
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ragline.observability import ingest_metrics
from ragline.observability.logging import REQUEST_ID_HEADER, clean_request_id, new_request_id, request_context
from ragline.observability.tracing import root_span
from ragline.records import Answer

log = logging.getLogger("ragline.api.access")

__all__ = ["PROMETHEUS_CONTENT_TYPE", "Metrics", "MetricsMiddleware"]

_FAST = (0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.2, 0.5, 1.0, 2.5)
QUERY_PATHS = frozenset({"/query", "/search", "/v1/chat/completions"})  # traced under a `query` span
_SLOW = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 40.0, 80.0, 160.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "ragline_http_requests",
            "HTTP requests by route, method and status",
            ["route", "method", "status"],
            registry=r,
        )
        self.request_seconds = Histogram(
            "ragline_http_request_seconds",
            "Request latency, streams until their last byte",
            ["route"],
            buckets=_FAST + _SLOW[6:],
            registry=r,
        )
        self.retrieval_seconds = Histogram("ragline_retrieval_seconds", "Retrieval latency", buckets=_FAST, registry=r)
        self.generation_seconds = Histogram(
            "ragline_generation_seconds", "Generation latency (prompt + answer)", buckets=_SLOW, registry=r
        )
        self.first_token_seconds = Histogram(
            "ragline_first_token_seconds", "Time to the first answer token", buckets=_SLOW, registry=r
        )
        self.tokens = Counter("ragline_tokens", "Language-model tokens", ["kind"], registry=r)
        self.streams = Gauge("ragline_streams_active", "Streaming responses in progress", registry=r)
        self.errors = Counter("ragline_errors", "Errors returned, by type", ["type"], registry=r)
        self.fallbacks = Counter("ragline_retrieval_only_answers", "Answers given without the LLM", registry=r)
        self.index_generation = Gauge(
            "ragline_index_generation",
            "Index generation: the one this process serves (on Ray Serve the oldest any replica serves), and the "
            "one published (-1: none)",
            ["which"],
            registry=r,
        )
        self.replica_generation = Gauge(
            "ragline_index_generation_replica",
            "Index generation each Ray Serve replica that retrieves serves",
            ["replica"],
            registry=r,
        )

    def observe_answer(self, answer: Answer) -> None:
        t = answer.timings
        if "retrieve" in t:
            self.retrieval_seconds.observe(t["retrieve"])
        if "generate" in t:
            self.generation_seconds.observe(t["generate"])
        if "first_token" in t:
            self.first_token_seconds.observe(t["first_token"])
        self.tokens.labels("prompt").inc(answer.usage.prompt_tokens)
        self.tokens.labels("completion").inc(answer.usage.completion_tokens)

    def set_generation(self, report: dict[str, Any] | None) -> None:
        """Show the generation served and published (-1: none)."""
        for which in ("served", "published"):
            value = (report or {}).get(which)
            self.index_generation.labels(which).set(-1 if value is None else value)
        self.replica_generation.clear()  # replicas come and go: show the ones reported now
        for replica in (report or {}).get("replicas", []):
            served = replica.get("served")
            self.replica_generation.labels(str(replica["replica"])).set(-1 if served is None else served)

    def render(self) -> bytes:
        """This server's metrics, then the counters of ingests run in this process."""
        return generate_latest(self.registry) + ingest_metrics.render()


class MetricsMiddleware:
    """The HTTP edge: gives each request its id (``X-Request-ID``, or a new one) for every log line and span
    of the request, counts and times it by route template, and writes one access-log line (never the body).

    For the query routes it opens the ``query`` span that retrieval and generation spans hang under.
    ``echo_request_id``: return the id in the response header (Ray Serve's proxy does that itself).
    """

    def __init__(self, app: ASGIApp, metrics: Metrics, echo_request_id: bool = True) -> None:
        self.app = app
        self.metrics = metrics
        self.echo_request_id = echo_request_id

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # if the app fails before answering
        rid = clean_request_id(Headers(scope=scope).get(REQUEST_ID_HEADER)) or new_request_id()

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                if self.echo_request_id:
                    MutableHeaders(scope=message)[REQUEST_ID_HEADER] = rid
            await send(message)

        with request_context(rid):
            try:
                if scope.get("path") in QUERY_PATHS:
                    with root_span("query", route=scope["path"]):
                        await self.app(scope, receive, send_status)
                else:
                    await self.app(scope, receive, send_status)
            finally:
                elapsed = time.perf_counter() - started
                route = _route(scope)
                method = scope.get("method", "")
                self.metrics.requests.labels(route, method, str(status)).inc()
                self.metrics.request_seconds.labels(route).observe(elapsed)
                ms = round(elapsed * 1000, 2)
                # Plain text for humans; the fields again as `extra` for the JSON formatter.
                log.info(
                    "%s %s %d %.1f ms",
                    method,
                    route,
                    status,
                    ms,
                    extra={"method": method, "route": route, "status": status, "duration_ms": ms},
                )


def _route(scope: Scope) -> str:
    # The route template, never the raw path: raw paths would make one time series per URL.
    route: Any = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"
