"""JSON log lines, request ids and the stage spans, without a server or a model."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from ragline.observability import tracing
from ragline.observability.logging import (
    JsonFormatter,
    RequestIdFilter,
    clean_request_id,
    configure_logging,
    request_context,
)
from ragline.observability.settings import ObservabilitySettings


@pytest.fixture()
def root_handlers() -> Iterator[None]:
    root = logging.getLogger()
    saved, level = root.handlers[:], root.level
    try:
        yield
    finally:
        root.handlers[:] = saved
        root.setLevel(level)
        logging.getLogger("ragline").setLevel(logging.NOTSET)


def test_json_lines_carry_the_request_id_and_extras(root_handlers: None) -> None:
    buf = io.StringIO()
    configure_logging("json", logging.INFO, buf)
    log = logging.getLogger("ragline.test")
    with request_context("req-42"):
        log.info("GET %s", "/healthz", extra={"route": "/healthz", "status": 200, "duration_ms": 1.5})
    log.warning("outside")
    first, second = (json.loads(line) for line in buf.getvalue().splitlines())
    assert first["request_id"] == "req-42" and first["message"] == "GET /healthz"
    assert (first["route"], first["status"], first["duration_ms"]) == ("/healthz", 200, 1.5)
    assert first["level"] == "INFO" and first["logger"] == "ragline.test" and first["ts"].endswith("Z")
    assert second["request_id"] is None and second["level"] == "WARNING"


def test_text_format_shows_the_request_id(root_handlers: None) -> None:
    buf = io.StringIO()
    configure_logging("text", logging.INFO, buf)
    with request_context("abc"):
        logging.getLogger("ragline.x").info("hello")
    assert buf.getvalue().strip() == "INFO ragline.x [abc]: hello"


def test_exceptions_stay_on_one_json_line() -> None:
    handler = logging.StreamHandler(buf := io.StringIO())
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    log = logging.getLogger("ragline.test.exc")
    log.addHandler(handler)
    log.propagate = False
    try:
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception("failed")
    finally:
        log.removeHandler(handler)
        log.propagate = True
    lines = buf.getvalue().splitlines()
    assert len(lines) == 1 and "ValueError: boom" in json.loads(lines[0])["exception"]


def test_incoming_request_ids_are_cleaned() -> None:
    assert clean_request_id("abc-123") == "abc-123"
    assert clean_request_id("a b\nc\x00") == "abc"
    assert clean_request_id("x" * 500) == "x" * 128
    assert clean_request_id("") is None and clean_request_id(" \n") is None and clean_request_id(None) is None


def test_spans_are_a_no_op_until_configured() -> None:
    assert not tracing.enabled()
    with tracing.span("embed"):
        pass
    assert list(tracing.traced("generate", iter([1, 2]))) == [1, 2]
    with request_context("rid"):
        assert tracing.carrier() == {"request_id": "rid"}  # no trace context without tracing


def test_carrier_and_adopt_continue_a_trace_in_another_thread() -> None:
    import threading

    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    tracing.configure_tracing(ObservabilitySettings(), exporter=exporter)
    try:
        seen: dict[str, str | None] = {}

        def replica(context: dict[str, str]) -> None:
            from ragline.observability.logging import current_request_id

            with tracing.adopt(context):
                seen["rid"] = current_request_id()
                with tracing.span("search"):
                    pass
                assert list(tracing.adopted(context, tracing.traced("generate", iter("ab")))) == ["a", "b"]

        with request_context("rid-7"), tracing.root_span("query"):
            context = tracing.carrier()
            worker = threading.Thread(target=replica, args=(context,))
            worker.start()
            worker.join()
        assert "traceparent" in context and seen["rid"] == "rid-7"
        spans = {s.name: s for s in exporter.get_finished_spans()}
        assert set(spans) == {"query", "search", "generate"}
        root = spans["query"]
        for name in ("search", "generate"):
            assert spans[name].context.trace_id == root.context.trace_id
            assert spans[name].parent is not None and spans[name].parent.span_id == root.context.span_id
            assert spans[name].attributes["request_id"] == "rid-7"
    finally:
        tracing.shutdown_tracing()
    assert not tracing.enabled()
