"""Vector stores: the protocol, and backends chosen from settings.

``EdgeStore`` (the embedded Qdrant engine, the default) and ``QdrantStore`` (a Qdrant server, or
qdrant-client's local mode) import their engines only when used, so ``import ragline.store`` is cheap.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragline.config import QdrantSettings
from ragline.errors import MissingDependencyError
from ragline.store.base import Filters, IndexInfo, Prefix, StoredDocument, VectorStore

if TYPE_CHECKING:
    from ragline.store.edge import EdgeStore
    from ragline.store.qdrant import QdrantStore

__all__ = [
    "BACKENDS",
    "EdgeStore",
    "Filters",
    "IndexInfo",
    "Prefix",
    "QdrantStore",
    "StoredDocument",
    "VectorStore",
    "make_store",
]


def _edge(settings: QdrantSettings, data_dir: Path) -> VectorStore:
    """The published generation of the data dir's index, followed as new ones are published."""
    from ragline.store.edge import EdgeStore
    from ragline.store.following import FollowingStore

    layout = _layout(settings)
    return FollowingStore(data_dir, lambda path: EdgeStore(path, **layout))


def _client(settings: QdrantSettings, data_dir: Path) -> VectorStore:
    """The alias ``qdrant.collection`` on a Qdrant server or local-mode path; generations behind it."""
    from ragline.store.aliased import AliasStore

    return AliasStore(
        url=settings.url,
        api_key=settings.api_key.get_secret_value() if settings.api_key else None,
        path=settings.path,
        collection=settings.collection,
        timeout=settings.timeout,
        lock_dir=data_dir,
        **_layout(settings),
    )


def _layout(settings: QdrantSettings) -> dict[str, Any]:
    """The memory layout a new index or collection is created with."""
    return {
        "quantization": settings.quantization,
        "on_disk_vectors": settings.on_disk_vectors,
        "on_disk_payload": settings.on_disk_payload,
    }


# name -> (does it apply to these settings?, build it). The first that applies wins; edge is the fallback.
BACKENDS: dict[str, tuple[Callable[[QdrantSettings], bool], Callable[[QdrantSettings, Path], VectorStore]]] = {
    "qdrant-client": (lambda s: bool(s.url or s.path), _client),
    "edge": (lambda s: True, _edge),
}
_PACKAGES = {"qdrant_edge": "qdrant-edge-py", "qdrant_client": "qdrant-client"}


def make_store(settings: QdrantSettings, data_dir: Path) -> VectorStore:
    """The configured store: a Qdrant server or local-mode path when set, else the embedded engine."""
    name, build = next((n, b) for n, (applies, b) in BACKENDS.items() if applies(settings))
    try:
        return build(settings, data_dir)
    except ImportError as e:
        package = _PACKAGES.get((e.name or "").split(".")[0], e.name or name)
        raise MissingDependencyError(package, "qdrant") from e


def __getattr__(name: str) -> Any:
    """Import the backend classes on first access (``from ragline.store import EdgeStore``)."""
    if name == "EdgeStore":
        from ragline.store.edge import EdgeStore

        return EdgeStore
    if name == "QdrantStore":
        from ragline.store.qdrant import QdrantStore

        return QdrantStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
