"""The in-process ingest engine: files -> documents -> chunks -> vectors -> index, incrementally."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ragline.components import Components
from ragline.errors import SourceError
from ragline.index import Change, IndexReport, IndexState, IndexWriter, Skipped
from ragline.records import Document, doc_id_for
from ragline.sources.files import iter_files, load_document, source_url

log = logging.getLogger(__name__)

Progress = Callable[[str, int], None]  # (event, amount): "document", "chunks", "skipped"


@dataclass(slots=True)
class Loaded:
    """One input after reading: a document, or the reason it could not be read."""

    fallback_source: str
    document: Document | None = None
    error: str | None = None


def read_sources(
    paths: Sequence[str | Path], components: Components, metadata: dict[str, Any] | None = None
) -> tuple[list[str], Iterator[Loaded]]:
    """The folder origins (for deletion of vanished files) and a lazy stream of loaded documents.

    ``metadata`` (e.g. ``{"tenant": "acme"}``) is attached to every document and is filterable.
    """
    parse = components.settings.parse
    origins: list[str] = []
    roots: list[Path] = []
    missing: list[str] = []
    for arg in paths:
        p = Path(arg)
        if not p.exists():
            missing.append(str(arg))
            continue
        roots.append(p)
        if p.is_dir():
            origins.append(str(p.resolve()))

    def stream() -> Iterator[Loaded]:
        for m in missing:
            yield Loaded(m, error="not found")
        for root in roots:
            origin = str(root.resolve()) if root.is_dir() else None
            for f in iter_files([root]):
                fallback = (
                    source_url(f.relpath, parse.url_template)
                    if parse.url_template
                    else str(Path(f.path).resolve().as_posix())
                )
                try:
                    doc = load_document(f, parse)
                except SourceError as e:
                    yield Loaded(fallback, error=str(e))
                    continue
                doc.metadata.update(metadata or {})
                doc.metadata.setdefault("origin", origin)
                yield Loaded(fallback, document=doc)

    return origins, stream()


def ingest(
    paths: Sequence[str | Path],
    components: Components,
    *,
    recreate: bool = False,
    progress: Progress | None = None,
    metadata: dict[str, Any] | None = None,
) -> IndexReport:
    """Bring the index in line with ``paths``: add new, replace changed, drop vanished documents."""
    origins, loaded = read_sources(paths, components, metadata)
    return index_documents(loaded, origins, components, recreate=recreate, progress=progress)


def index_documents(
    loaded: Iterable[Loaded],
    origins: Sequence[str],
    components: Components,
    *,
    recreate: bool = False,
    progress: Progress | None = None,
) -> IndexReport:
    t0 = time.perf_counter()
    report = IndexReport()
    store, chunker = components.store, components.chunker
    store.open(components.index_info(), recreate=recreate)
    state = IndexState(store.documents())
    writer = IndexWriter(store, components.embedder)
    seen: dict[str, str] = {}  # doc_id -> source, including documents that failed (never delete those)
    tick = progress or (lambda _e, _n: None)

    for item in loaded:
        if item.document is None:
            seen.setdefault(doc_id_for(item.fallback_source), item.fallback_source)
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
        seen[doc.doc_id] = doc.source
        report.documents += 1
        change = state.change(doc.doc_id, doc.content_hash)
        report.count(change)
        if change is not Change.UNCHANGED:  # unchanged documents cost no chunking and no embedding
            chunks = chunker.split(doc, origin=origin)
            report.chunks_written += writer.add(doc.doc_id, doc.content_hash, chunks)
            tick("chunks", len(chunks))
        tick("document", 1)
    report.chunks_written += writer.flush()

    for doc_id in state.gone(origins, set(seen)):
        report.chunks_deleted += store.count({"doc_id": doc_id})
        store.delete_document(doc_id)
        report.deleted += 1
        log.info("deleted %s (gone from its folder)", state.source.get(doc_id, doc_id))
    store.flush()
    report.chunks = store.count()
    report.seconds = time.perf_counter() - t0
    return report
