"""Delete every chunk of the documents under a source prefix (a URL path or a folder)."""

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


def source_prefix(given: str) -> str:
    """A prefix as sources are stored: URLs as given, local paths absolute (``docs/old/`` from the cwd)."""
    if "://" in given or not given.strip():
        return given
    absolute = Path(given).expanduser().resolve().as_posix()
    return absolute + "/" if given.endswith("/") and not absolute.endswith("/") else absolute


def preview(store: VectorStore, prefix: str) -> DeleteReport:
    """What ``delete_sources`` would delete, without deleting it."""
    under = {"source": Prefix(prefix)}
    documents = store.count({**under, "chunk_index": 0})  # a document is listed by its first chunk
    return DeleteReport(prefix, documents, store.count(under))


def delete_sources(store: VectorStore, prefix: str) -> DeleteReport:
    """Delete every point whose source is under ``prefix`` (dense and BM25 vectors alike), durably.

    A later ingest of a folder that still holds the files adds them back: delete the files too, or
    ingest elsewhere.
    """
    under = {"source": Prefix(prefix)}
    documents = preview(store, prefix).documents
    chunks = store.delete(under)
    store.flush()
    log.info("deleted %d chunks of %d documents under %s", chunks, documents, prefix)
    return DeleteReport(prefix, documents, chunks)
