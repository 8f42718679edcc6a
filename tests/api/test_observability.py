"""Request ids, JSON logs, traces and ingest counters of a real in-process server (real models, real index)."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from ragline.components import Components
from ragline.config import load_settings
from ragline.ingest.local import ingest
from ragline.observability import tracing
from ragline.observability.logging import JsonFormatter, RequestIdFilter
from ragline.observability.settings import ObservabilitySettings

from .helpers import app_settings, auth, serve_in_process

pytestmark = pytest.mark.slow

QUESTION = {"query": "How do I calibrate the flux widget?", "k": 2, "mode": "generative"}  # a generate span too


@pytest.fixture(scope="module")
def base_url(index_dir: Path) -> Iterator[str]:
    s = app_settings(index_dir)
    s.retrieval.rerank = ["title"]  # so that the query path has a rerank stage too
    with serve_in_process(s) as url:
        yield url


@pytest.fixture()
def log_lines() -> Iterator[io.StringIO]:
    """Every ragline record of the test as a JSON line, as `ragline serve` writes them."""
    buf = io.StringIO()
    handler = logging.StreamHandler(buf)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    ragline_log = logging.getLogger("ragline")
    level = ragline_log.level
    ragline_log.addHandler(handler)
    ragline_log.setLevel(logging.DEBUG)
    try:
        yield buf
    finally:
        ragline_log.removeHandler(handler)
        ragline_log.setLevel(level)


@pytest.fixture()
def exporter() -> Iterator[InMemorySpanExporter]:
    spans = InMemorySpanExporter()
    tracing.configure_tracing(ObservabilitySettings(), exporter=spans)
    try:
        yield spans
    finally:
        tracing.shutdown_tracing()


def test_request_id_is_returned_and_generated_when_missing(base_url: str, client: httpx.Client) -> None:
    r = client.get(f"{base_url}/healthz", headers={"X-Request-ID": "given-id-1"})
    assert r.headers["x-request-id"] == "given-id-1"
    r = client.get(f"{base_url}/healthz")
    assert re.fullmatch(r"[0-9a-f]{32}", r.headers["x-request-id"])
    assert r.headers.get_list("x-request-id") == [r.headers["x-request-id"]]


def test_json_logs_carry_the_request_id_from_the_edge_to_generation(
    base_url: str, client: httpx.Client, log_lines: io.StringIO
) -> None:
    r = client.post(f"{base_url}/query", json=QUESTION, headers={**auth(), "X-Request-ID": "trace-me-42"})
    assert r.status_code == 200, r.text
    entries = [json.loads(line) for line in log_lines.getvalue().splitlines()]
    mine = [e for e in entries if e.get("request_id") == "trace-me-42"]
    access = [e for e in mine if e["logger"] == "ragline.api.access"]
    assert len(access) == 1
    assert (access[0]["method"], access[0]["route"], access[0]["status"]) == ("POST", "/query", 200)
    assert access[0]["duration_ms"] > 0
    stages = {e["stage"] for e in mine if "stage" in e}
    assert {"embed", "search", "rerank", "generate"} <= stages
    for e in mine:
        assert {"ts", "level", "logger", "message", "request_id"} <= set(e)
    # the access line names the route, never what was asked
    assert "flux" not in json.dumps(access)


def test_query_spans_share_one_trace(base_url: str, client: httpx.Client, exporter: InMemorySpanExporter) -> None:
    r = client.post(f"{base_url}/query", json=QUESTION, headers={**auth(), "X-Request-ID": "span-rid"})
    assert r.status_code == 200, r.text
    spans = exporter.get_finished_spans()
    roots = [s for s in spans if s.name == "query"]
    assert len(roots) == 1
    root = roots[0]
    children = {s.name: s for s in spans if s.parent is not None and s.parent.span_id == root.context.span_id}
    assert set(children) >= {"embed", "search", "rerank", "generate"}
    assert all(s.context.trace_id == root.context.trace_id for s in spans)
    assert root.attributes["request_id"] == "span-rid"
    assert children["generate"].end_time >= children["search"].end_time


def test_health_checks_are_not_traced(base_url: str, client: httpx.Client, exporter: InMemorySpanExporter) -> None:
    client.get(f"{base_url}/healthz")
    assert exporter.get_finished_spans() == ()


def _sample(text: str, name: str) -> float:
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    assert match, f"{name} not in /metrics"
    return float(match.group(1))


def test_metrics_expose_ingest_counters_after_an_ingest(base_url: str, client: httpx.Client, tmp_path: Path) -> None:
    before = client.get(f"{base_url}/metrics").text
    added = 'ragline_ingest_documents_total{outcome="added"}'
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.md").write_text("# Alpha\n\nThe alpha page explains alpha things.\n")
    (folder / "b.md").write_text("# Beta\n\nThe beta page explains beta things.\n")
    (folder / "empty.md").write_text("")
    comp = Components(load_settings(data_dir=tmp_path / "data"))
    try:
        report = ingest([folder], comp)
    finally:
        comp.close()
    after = client.get(f"{base_url}/metrics").text
    assert _sample(after, added) - _sample(before, added) == 2
    skipped = 'ragline_ingest_documents_total{outcome="skipped"}'
    assert _sample(after, skipped) - _sample(before, skipped) == 1
    assert _sample(after, "ragline_ingest_runs_total") - _sample(before, "ragline_ingest_runs_total") == 1
    written = "ragline_ingest_chunks_written_total"
    assert _sample(after, written) - _sample(before, written) == report.chunks_written > 0
    assert _sample(after, "ragline_ingest_embed_seconds_total") > _sample(before, "ragline_ingest_embed_seconds_total")
    assert _sample(after, "ragline_http_requests_total" + '{method="GET",route="/metrics",status="200"}') >= 1
