"""OpenTelemetry traces of the query path: ``query`` -> ``embed``, ``search``, ``rerank``, ``generate``.

A no-op (no import of OpenTelemetry, no cost) until ``configure_tracing`` is given an OTLP endpoint or an
exporter. This module keeps its own tracer instead of OpenTelemetry's global provider, which can be set
only once per process. Every stage also logs its duration at DEBUG with the request id.

Across Ray Serve handle calls the trace and the request id travel as a small dict (``carrier()`` in the
caller, ``adopt(carrier)`` in the replica), in W3C ``traceparent`` form.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from ragline.errors import MissingDependencyError
from ragline.observability.logging import current_request_id, request_context

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter

    from ragline.observability.settings import ObservabilitySettings

log = logging.getLogger(__name__)
T = TypeVar("T")

_tracer: Any = None  # an opentelemetry Tracer once configured
_provider: Any = None


def configure_tracing(settings: ObservabilitySettings, exporter: SpanExporter | None = None) -> bool:
    """Trace to ``exporter`` (tests) or to ``settings.otlp_endpoint``; without either, stay a no-op.

    Returns whether tracing is on.
    """
    global _tracer, _provider
    if exporter is None and not settings.otlp_endpoint:
        return _tracer is not None
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    except ImportError:
        raise MissingDependencyError("opentelemetry-sdk", "otel") from None
    provider = TracerProvider(resource=Resource.create({"service.name": settings.service_name}))
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    else:
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        except ImportError:
            raise MissingDependencyError("opentelemetry-exporter-otlp-proto-http", "otel") from None
        otlp = OTLPSpanExporter(endpoint=settings.otlp_endpoint, headers=settings.otlp_headers or None)
        provider.add_span_processor(BatchSpanProcessor(otlp))
        log.info("tracing to %s", settings.otlp_endpoint)
    shutdown_tracing()
    _provider, _tracer = provider, provider.get_tracer("ragline")
    return True


def shutdown_tracing() -> None:
    """Flush and stop the current provider; tracing is a no-op again."""
    global _tracer, _provider
    if _provider is not None:
        _provider.shutdown()
    _tracer = _provider = None


def enabled() -> bool:
    return _tracer is not None


def _attributes(attrs: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in attrs.items() if isinstance(v, str | int | float | bool)}


def _logged(name: str, started: float) -> None:
    ms = round((time.perf_counter() - started) * 1000, 2)
    log.debug("%s took %.1f ms", name, ms, extra={"stage": name, "duration_ms": ms})


@contextlib.contextmanager
def span(name: str, **attrs: Any) -> Iterator[None]:
    """A span around a block that does not yield across threads (it becomes the current span)."""
    started = time.perf_counter()
    try:
        if _tracer is None:
            yield
        else:
            rid = current_request_id()
            extra = {"request_id": rid} if rid else {}
            with _tracer.start_as_current_span(name, attributes=_attributes({**extra, **attrs})):
                yield
    finally:
        _logged(name, started)


def traced(name: str, items: Iterable[T], **attrs: Any) -> Iterator[T]:
    """``items`` inside a span that starts at the first item and ends when they run out or are closed.

    For generators resumed from different threads (streamed answers): the span is never made current,
    so nothing has to be detached in the thread that happened to attach it.
    """
    started = time.perf_counter()
    current = None
    if _tracer is not None:
        rid = current_request_id()
        current = _tracer.start_span(name, attributes=_attributes({**({"request_id": rid} if rid else {}), **attrs}))
    try:
        yield from items
    except BaseException as e:
        if current is not None and not isinstance(e, GeneratorExit):
            current.record_exception(e)
        raise
    finally:
        if current is not None:
            current.end()
        _logged(name, started)


@contextlib.contextmanager
def root_span(name: str, **attrs: Any) -> Iterator[None]:
    """The parent span of one request (at the HTTP edge), current for the block; a no-op untraced."""
    if _tracer is None:
        yield
        return
    rid = current_request_id()
    with _tracer.start_as_current_span(name, attributes=_attributes({**({"request_id": rid} if rid else {}), **attrs})):
        yield


def carrier() -> dict[str, str]:
    """The request id and trace context of this request, to pass along with a call to another process."""
    out: dict[str, str] = {}
    rid = current_request_id()
    if rid:
        out["request_id"] = rid
    if _tracer is not None:
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        TraceContextTextMapPropagator().inject(out)
    return out


@contextlib.contextmanager
def adopt(given: dict[str, str] | None) -> Iterator[None]:
    """Continue the caller's request in this process: its request id, and its trace as the parent."""
    given = given or {}
    with request_context(given.get("request_id")):
        if _tracer is None or "traceparent" not in given:
            yield
            return
        from opentelemetry import context
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        token = context.attach(TraceContextTextMapPropagator().extract(given))
        try:
            yield
        finally:
            context.detach(token)


def adopted(given: dict[str, str] | None, items: Iterator[T]) -> Iterator[T]:
    """``items`` with each step run under ``adopt(given)``: safe for generators resumed from any thread."""
    try:
        while True:
            with adopt(given):
                item = next(items, _END)
            if item is _END:
                return
            yield item
    finally:
        close = getattr(items, "close", None)
        if close is not None:
            with adopt(given):
                close()


_END: Any = object()
