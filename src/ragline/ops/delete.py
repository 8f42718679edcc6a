"""Delete every chunk of the documents under a source prefix (a URL path or a folder).

A prefix matches a document by its source (URL or path), and also by the folder it was ingested from: a
folder of pages that declare canonical URLs (``https://…``) is deleted by naming the folder, as it was ingested.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ragline.store.base import Prefix, VectorStore

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DeleteReport:
    prefix: str
    documents: int  # documents (by their first chunk) under the prefix
    chunks: int  # points deleted, or that a dry run would delete

    def to_json(self) -> dict[str, Any]:
        return {"prefix": self.prefix, "documents": self.documents, "chunks": self.chunks}


def source_prefix(given: str, store: VectorStore | None = None) -> str:
    """A prefix as sources are stored: URLs as given; a relative path as given when ``store`` holds sources
    under it (ingested with a relative URL template, ``docs/{path}``), else absolute (``docs/old/`` from the
    cwd)."""
    if "://" in given or not given.strip():
        return given
    if store is not None and not Path(given).is_absolute() and store.count({"source": Prefix(given)}):
        return given
    absolute = Path(given).expanduser().resolve().as_posix()
    return absolute + "/" if given.endswith("/") and not absolute.endswith("/") else absolute


def _matches(prefix: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The two filters a prefix stands for: sources under it, and documents ingested from it as a folder."""
    return {"source": Prefix(prefix)}, {"origin": prefix.rstrip("/") or prefix}


def preview(store: VectorStore, prefix: str) -> DeleteReport:
    """What ``delete_sources`` would delete, without deleting it."""
    by_source, by_origin = _matches(prefix)

    def count(extra: dict[str, Any]) -> int:
        both = store.count({**by_source, **by_origin, **extra})
        return store.count({**by_source, **extra}) + store.count({**by_origin, **extra}) - both

    first = {"chunk_index": 0}  # a document is listed by its first chunk
    return DeleteReport(prefix, count(first), count({}))


def delete_sources(store: VectorStore, prefix: str) -> DeleteReport:
    """Delete every point whose source is under ``prefix`` (dense and BM25 vectors alike), durably.

    A later ingest of a folder that still holds the files adds them back: delete the files too, or
    ingest elsewhere.
    """
    by_source, by_origin = _matches(prefix)
    documents = preview(store, prefix).documents
    chunks = store.delete(by_source) + store.delete(by_origin)
    store.flush()
    log.info("deleted %d chunks of %d documents under %s", chunks, documents, prefix)
    return DeleteReport(prefix, documents, chunks)
