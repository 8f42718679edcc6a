"""What both engines share about a run: the options an engine takes, progress events, and the finish."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypedDict

from ragline.errors import BadRequestError
from ragline.ingest.changes import IndexState
from ragline.ingest.report import IndexReport
from ragline.observability import ingest_metrics
from ragline.store.base import VectorStore

log = logging.getLogger(__name__)

Progress = Callable[[str, int], None]  # (event, amount): "document", "chunks", "skipped"


class IngestOptions(TypedDict, total=False):
    """What every engine's ``ingest(paths, components, **options)`` takes besides the inputs."""

    recreate: bool  # drop the index and build it anew
    progress: Progress | None  # called with ("document" | "chunks" | "skipped", amount)
    metadata: dict[str, Any] | None  # attached to every document, e.g. {"tenant": "acme"}


def stamp(metadata: Mapping[str, Any] | None, tenant: str | None) -> dict[str, Any]:
    """The metadata every document of a run carries: ``metadata`` and, when given, its tenant (never blank)."""
    stamped = dict(metadata or {})
    if tenant is not None:
        if not tenant.strip():
            raise BadRequestError("the tenant is empty")
        stamped["tenant"] = tenant
    return stamped


def finish(
    report: IndexReport, store: VectorStore, state: IndexState, origins: Sequence[str], seen: set[str], t0: float
) -> None:
    """Delete documents gone from their folders, make the writes durable and complete the report."""
    for doc_id in state.gone(origins, seen):
        report.chunks_deleted += store.count({"doc_id": doc_id})
        store.delete_document(doc_id)
        report.deleted += 1
        log.info("deleted %s (gone from its folder)", state.source.get(doc_id, doc_id))
    store.flush()
    report.index_chunks = store.count()
    report.seconds = time.perf_counter() - t0
    ingest_metrics.record(report)
