"""The in-process ingest engine: files -> documents -> chunks -> vectors -> index, incrementally."""

from __future__ import annotations

import logging
import queue
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, Unpack, cast

from ragline.chunk import Chunker
from ragline.components import Components
from ragline.embed.base import Embedder
from ragline.errors import SourceError
from ragline.ingest.changes import Change, IndexState
from ragline.ingest.inputs import plan_inputs
from ragline.ingest.parallel import ParallelEmbedder, parallel
from ragline.ingest.report import IndexReport, Skipped
from ragline.ingest.run import IngestOptions, Progress, finish
from ragline.ingest.writer import IndexWriter
from ragline.observability.ingest_metrics import TimedEmbedder
from ragline.privacy import add_counts
from ragline.records import Loaded, doc_id_for, tenant_of
from ragline.sources.files import load_document

log = logging.getLogger(__name__)
T = TypeVar("T")


def read_sources(
    paths: Sequence[str | Path], components: Components, metadata: dict[str, Any] | None = None
) -> tuple[list[str], Iterator[Loaded]]:
    """The folder origins (for deletion of vanished files) and a lazy stream of loaded documents.

    ``metadata`` (e.g. ``{"tenant": "acme"}``) is attached to every document and is filterable.
    """
    parse = components.settings.parse
    inputs = plan_inputs(paths)

    def stream() -> Iterator[Loaded]:
        for m in inputs.missing:
            yield Loaded(m, error="not found")
        for url in inputs.urls:
            from ragline.sources.crawl import crawl_documents

            yield from crawl_documents(url, components.settings, metadata)
        for item in inputs.files(parse):
            try:
                doc = load_document(item.file, parse)
            except SourceError as e:
                yield Loaded(item.fallback, error=str(e))
                continue
            doc.metadata.update(metadata or {})
            doc.metadata.setdefault("origin", item.origin)
            yield Loaded(item.fallback, document=doc)

    return inputs.origins, stream()


def ingest(paths: Sequence[str | Path], components: Components, **options: Unpack[IngestOptions]) -> IndexReport:
    """Bring the index in line with ``paths``: add new, replace changed, drop vanished documents."""
    metadata = options.get("metadata")
    origins, loaded = read_sources(paths, components, metadata)
    return index_documents(
        loaded,
        origins,
        components,
        recreate=options.get("recreate", False),
        progress=options.get("progress"),
        tenant=tenant_of(metadata or {}),
    )


def index_documents(
    loaded: Iterable[Loaded],
    origins: Sequence[str],
    components: Components,
    *,
    recreate: bool = False,
    progress: Progress | None = None,
    tenant: str | None = None,
) -> IndexReport:
    """Index a stream of loaded documents: chunk and embed only new or changed ones, in length-sorted batches.

    Three things overlap: a thread reads and parses the next documents, this thread chunks, and (for an
    embedder that allows it) a writer thread embeds the previous batch with data-parallel calls and writes it.
    """
    t0 = time.perf_counter()
    report = IndexReport()
    settings = components.settings
    store, chunker = components.store, components.chunker
    store.open(components.index_info(), recreate=recreate)
    state = IndexState(store.documents(), tenant)
    embedder, concurrent = parallel(*components.ingest_model)
    # Embedding and writing run beside chunking when the embedder allows it (see ingest.parallel).
    timed = cast(Embedder, TimedEmbedder(embedder))  # counts embedding time into the ingest metrics
    writer = IndexWriter(store, timed, batch_chunks=settings.ingest.embed_batch, background=concurrent)
    writer.start()
    try:
        with quick_gil_handoff(concurrent):
            seen = _index(read_ahead(loaded, settings.ingest.parse_ahead), state, chunker, writer, report, progress)
    finally:
        writer.close()
        if isinstance(embedder, ParallelEmbedder):
            embedder.close()
    finish(report, store, state, origins, seen, t0)
    return report


def _index(
    loaded: Iterable[Loaded],
    state: IndexState,
    chunker: Chunker,
    writer: IndexWriter,
    report: IndexReport,
    progress: Progress | None,
) -> set[str]:
    """The loop over documents; returns the doc ids this run saw (documents that failed included)."""
    seen: dict[str, str] = {}  # doc_id -> source, including documents that failed (never delete those)
    tick = progress or (lambda _e, _n: None)
    for item in loaded:
        if item.document is None:
            if not item.gone:  # a page that failed keeps its document; one that is gone loses it
                seen.setdefault(doc_id_for(item.fallback_source, state.tenant), item.fallback_source)
            report.skipped.append(Skipped(item.fallback_source, item.error or "unreadable"))
            log.warning("skipped %s: %s", item.fallback_source, item.error)
            tick("skipped", 1)
            continue
        doc = item.document
        origin = doc.metadata.pop("origin", None)
        if doc.doc_id in seen:
            report.skipped.append(Skipped(item.fallback_source, f"same URL as another document: {doc.source}"))
            tick("skipped", 1)
            continue
        seen[doc.doc_id] = doc.source  # one over a bound keeps its previous version, as a failed page does
        change = state.change(doc.doc_id, doc.content_hash)
        chunks = []
        if change is not Change.UNCHANGED:  # unchanged documents cost no chunking and no embedding
            try:
                chunks = chunker.split(doc, origin=origin)
            except SourceError as e:
                report.skipped.append(Skipped(item.fallback_source, str(e)))
                log.warning("skipped %s: %s", item.fallback_source, e)
                tick("skipped", 1)
                continue
        report.documents += 1
        add_counts(report.redacted, doc.redacted)
        report.count(change)
        if change is not Change.UNCHANGED:
            report.chunks_written += writer.add(doc.doc_id, doc.content_hash, chunks)
            tick("chunks", len(chunks))
        tick("document", 1)
    report.chunks_written += writer.flush()
    return set(seen)


# While an ingest's threads share the interpreter: an embedding call that returns from the model waits for the
# GIL while the parser or the chunker runs Python, up to the switch interval (5 ms by default) each time, and
# its core idles meanwhile. At 1 ms the Ray HTML pages' in-process ingest idled 0.9-1.1 core-seconds instead
# of 1.2-1.3 and took 0.1-0.4 s less in five alternating pairs of runs (about 20.5 s each).
_SWITCH_INTERVAL = 0.001
_handoff_lock = threading.Lock()
_handoff_users = 0
_handoff_saved = 0.0


@contextmanager
def quick_gil_handoff(active: bool = True) -> Iterator[None]:
    """Lower the interpreter's thread switch interval to ``_SWITCH_INTERVAL`` (if it is higher) while the
    block runs, and put it back when the last concurrent user leaves."""
    global _handoff_users, _handoff_saved
    if not active:
        yield
        return
    with _handoff_lock:
        if _handoff_users == 0:
            _handoff_saved = sys.getswitchinterval()
            sys.setswitchinterval(min(_handoff_saved, _SWITCH_INTERVAL))
        _handoff_users += 1
    try:
        yield
    finally:
        with _handoff_lock:
            _handoff_users -= 1
            if _handoff_users == 0:
                sys.setswitchinterval(_handoff_saved)


_DONE = object()


@dataclass(slots=True)
class _Raised:
    error: BaseException


def read_ahead(items: Iterable[T], depth: int) -> Iterator[T]:
    """``items``, produced by a background thread up to ``depth`` ahead of the consumer.

    Reading and parsing (pure Python, or I/O) then overlap with embedding, whose runtimes release the
    GIL. ``depth`` 0 iterates inline. An error in the producer is raised in the consumer.
    """
    if depth <= 0:
        yield from items
        return
    buffer: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def offer(item: Any) -> bool:
        """Put ``item`` unless the consumer has gone; False when it has."""
        while not stop.is_set():
            try:
                buffer.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not offer(item):
                    return
            offer(_DONE)
        except BaseException as e:  # handed to the consumer, which raises it
            offer(_Raised(e))

    thread = threading.Thread(target=produce, name="ragline-read-ahead", daemon=True)
    thread.start()
    try:
        while (item := buffer.get()) is not _DONE:
            if isinstance(item, _Raised):
                raise item.error
            yield item
    finally:
        stop.set()  # a consumer that stops early (an error, a break) releases the producer
