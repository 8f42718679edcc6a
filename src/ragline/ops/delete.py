"""Delete every chunk of the documents under a source prefix (a URL path or a folder).

A prefix matches a document by its source (URL or path), and also by the folder it was ingested from: a
folder of pages that declare canonical URLs (``https://…``) is deleted by naming the folder, as it was ingested.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ragline.errors import BadRequestError
from ragline.store.base import Prefix, VectorStore

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DeleteReport:
    prefix: str
    documents: int  # documents (by their first chunk) under the prefix
    chunks: int  # points deleted, or that a dry run would delete
    tenant: str | None = None  # the tenant the delete was confined to, if any

    def to_json(self) -> dict[str, Any]:
        scope = {"tenant": self.tenant} if self.tenant is not None else {}
        return {"prefix": self.prefix, **scope, "documents": self.documents, "chunks": self.chunks}


@dataclass(frozen=True, slots=True)
class Scope:
    """Whose documents a delete may touch: one tenant's, or every tenant's when said so. Without either, a
    delete that would reach a tenant's documents is refused (tenants share an index)."""

    tenant: str | None = None
    all_tenants: bool = False

    def conditions(self, store: VectorStore, prefix: str) -> dict[str, Any]:
        """The tenant condition to add to a delete under ``prefix``; raise when the scope is unsaid and
        tenants' documents are under it."""
        if self.tenant is not None and self.all_tenants:
            raise BadRequestError("name one tenant or all tenants, not both")
        if self.tenant is not None:
            if not self.tenant.strip():
                raise BadRequestError("the tenant is empty")
            return {"metadata.tenant": self.tenant}
        if self.all_tenants:
            return {}
        tenants = _tenants_under(store, prefix)
        if tenants:
            raise BadRequestError(
                f"documents of {len(tenants)} tenant(s) are under {prefix}: delete within one tenant "
                "(--tenant, or tenant= on the API) or say all tenants (--all-tenants, or all_tenants=true)"
            )
        return {}


def _tenants_under(store: VectorStore, prefix: str) -> set[str]:
    """The tenants owning documents under ``prefix`` (by each document's first chunk)."""
    found: set[str] = set()
    for match in _matches(prefix):
        for _, payload in store.points({**match, "chunk_index": 0}):
            tenant = (payload.get("metadata") or {}).get("tenant")
            if tenant is not None:
                found.add(str(tenant))
    return found


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


def preview(store: VectorStore, prefix: str, scope: Scope | None = None) -> DeleteReport:
    """What ``delete_sources`` would delete, without deleting it."""
    scope = scope or Scope()
    extra = scope.conditions(store, prefix)
    by_source, by_origin = ({**m, **extra} for m in _matches(prefix))

    def count(extra: dict[str, Any]) -> int:
        both = store.count({**by_source, **by_origin, **extra})
        return store.count({**by_source, **extra}) + store.count({**by_origin, **extra}) - both

    first = {"chunk_index": 0}  # a document is listed by its first chunk
    return DeleteReport(prefix, count(first), count({}), scope.tenant)


def delete_sources(store: VectorStore, prefix: str, scope: Scope | None = None) -> DeleteReport:
    """Delete every point whose source is under ``prefix`` (dense and BM25 vectors alike), durably, within
    ``scope`` (see :class:`Scope`: unsaid, tenants' documents are refused).

    A later ingest of a folder that still holds the files adds them back: delete the files too, or
    ingest elsewhere.
    """
    derive = getattr(store, "derive", None)
    if derive is not None:  # an index of generations: the delete makes a new one, published when it deleted
        return derive(lambda s: delete_sources(s, prefix, scope), f"delete {prefix}", keep=lambda r: r.chunks > 0)
    scope = scope or Scope()
    documents = preview(store, prefix, scope).documents
    extra = scope.conditions(store, prefix)
    by_source, by_origin = ({**m, **extra} for m in _matches(prefix))
    chunks = store.delete(by_source) + store.delete(by_origin)
    store.flush()
    log.info("deleted %d chunks of %d documents under %s (tenant %s)", chunks, documents, prefix, scope.tenant)
    return DeleteReport(prefix, documents, chunks, scope.tenant)
