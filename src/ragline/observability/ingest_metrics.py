"""Prometheus counters of the ingests run in this process.

One process-wide registry, incremented by both ingest engines when an ingest finishes (and, for embedding
time, by the in-process engine as it embeds). A server exposes it on ``/metrics`` beside its own metrics;
``ragline ingest --metrics-file`` writes it in the node-exporter textfile format.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest, write_to_textfile

from ragline.embed.base import WrappedEmbedder

if TYPE_CHECKING:
    import numpy as np

    from ragline.ingest.report import IndexReport

REGISTRY = CollectorRegistry()
OUTCOMES = ("added", "updated", "unchanged", "deleted", "skipped")

RUNS = Counter("ragline_ingest_runs", "Ingests finished", registry=REGISTRY)
DOCUMENTS = Counter("ragline_ingest_documents", "Documents seen by ingests, by outcome", ["outcome"], registry=REGISTRY)
CHUNKS_WRITTEN = Counter("ragline_ingest_chunks_written", "Chunks embedded and written", registry=REGISTRY)
CHUNKS_DELETED = Counter("ragline_ingest_chunks_deleted", "Chunks removed with their documents", registry=REGISTRY)
EMBED_SECONDS = Counter(
    "ragline_ingest_embed_seconds", "Time spent embedding chunks (in-process engine)", registry=REGISTRY
)
EMBEDDED = Counter("ragline_ingest_embedded_chunks", "Chunks embedded (in-process engine)", registry=REGISTRY)
SECONDS = Counter("ragline_ingest_seconds", "Wall time of finished ingests", registry=REGISTRY)
LAST_SUCCESS = Gauge(
    "ragline_ingest_last_success_timestamp_seconds", "When the last ingest finished (Unix time)", registry=REGISTRY
)
INDEX_CHUNKS = Gauge("ragline_index_chunks", "Chunks in the index after the last ingest", registry=REGISTRY)

for _outcome in OUTCOMES:  # every series exists from the start, at 0
    DOCUMENTS.labels(_outcome)


def record(report: IndexReport) -> None:
    """Count one finished ingest."""
    RUNS.inc()
    for outcome in OUTCOMES:
        n = len(report.skipped) if outcome == "skipped" else getattr(report, outcome)
        DOCUMENTS.labels(outcome).inc(n)
    CHUNKS_WRITTEN.inc(report.chunks_written)
    CHUNKS_DELETED.inc(report.chunks_deleted)
    SECONDS.inc(report.seconds)
    LAST_SUCCESS.set(time.time())
    INDEX_CHUNKS.set(report.index_chunks)


def render() -> bytes:
    return generate_latest(REGISTRY)


def write_textfile(path: str | Path) -> None:
    """The counters in the textfile format (written to a temporary file, then renamed into place)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_to_textfile(str(path), REGISTRY)


class TimedEmbedder(WrappedEmbedder):
    """An embedder whose document embedding is timed into ``ragline_ingest_embed_seconds``; the rest delegates."""

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        started = time.perf_counter()
        vectors = self.inner.embed_documents(texts)
        EMBED_SECONDS.inc(time.perf_counter() - started)
        EMBEDDED.inc(len(texts))
        return vectors
