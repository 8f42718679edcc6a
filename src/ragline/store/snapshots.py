"""Moving a qdrant-client collection in and out of a folder: a server's own snapshot file over HTTP, or
(local mode, which has no snapshots) every point with its vectors and payload as JSON lines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from qdrant_client import QdrantClient, models

from ragline.errors import StoreError
from ragline.records import Chunk
from ragline.store.base import IndexInfo
from ragline.store.filters import DENSE, info_from_json
from ragline.store.sparse import SPARSE, document_vector, sparse_text

_SCROLL_PAGE = 512


def download_snapshot(url: str, path: Path, *, api_key: str | None, timeout: float) -> None:
    """Stream the server's snapshot file at ``url`` into ``path``."""
    with (
        httpx.stream("GET", url, headers=_headers(api_key), timeout=timeout) as response,
        path.open("wb") as f,
    ):
        response.raise_for_status()
        for block in response.iter_bytes():
            f.write(block)


def upload_snapshot(url: str, path: Path, *, api_key: str | None, timeout: float) -> None:
    """Upload the snapshot file ``path`` to the server, which replaces the collection with it."""
    with path.open("rb") as f:
        response = httpx.post(
            url,
            params={"priority": "snapshot", "wait": "true"},
            files={"snapshot": (path.name, f, "application/octet-stream")},
            headers=_headers(api_key),
            timeout=max(timeout, 600.0),
        )
    response.raise_for_status()


def export_points(client: QdrantClient, collection: str, path: Path) -> int:
    """Write every point of ``collection`` (id, dense and BM25 vectors, payload) to ``path``; returns how many."""
    n = 0
    offset: Any = None
    with path.open("w", encoding="utf-8") as f:
        while True:
            records, offset = client.scroll(
                collection, limit=_SCROLL_PAGE, offset=offset, with_payload=True, with_vectors=True
            )
            for r in records:
                vectors = r.vector if isinstance(r.vector, dict) else {}
                sparse = vectors.get(SPARSE)
                line = {
                    "id": r.id,
                    DENSE: vectors.get(DENSE),
                    SPARSE: {"indices": sparse.indices, "values": sparse.values}
                    if isinstance(sparse, models.SparseVector)
                    else None,
                    "payload": r.payload or {},
                }
                f.write(json.dumps(line) + "\n")
                n += 1
            if offset is None:
                return n


def import_points(client: QdrantClient, collection: str, path: Path, batch_size: int) -> None:
    """Upsert the points export_points() wrote; a point saved without BM25 gets it from its chunk text."""
    batch: list[models.PointStruct] = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            p = json.loads(line)
            sparse = p.get(SPARSE) or _bm25(p["payload"])
            vector = {DENSE: p[DENSE], SPARSE: models.SparseVector(**sparse)}
            batch.append(models.PointStruct(id=p["id"], vector=vector, payload=p["payload"]))
            if len(batch) >= batch_size:
                client.upsert(collection, points=batch, wait=True)
                batch = []
    if batch:
        client.upsert(collection, points=batch, wait=True)


def saved_info(path: Path) -> IndexInfo:
    """The IndexInfo in the ``collection.json`` a snapshot of a collection wrote."""
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise StoreError(f"{path.parent} holds no collection snapshot: {e}") from e
    info = info_from_json(meta.get("info")) if isinstance(meta, dict) else None
    if info is None:
        raise StoreError(f"{path} names no embedding model")
    return info


def _bm25(payload: dict[str, Any]) -> dict[str, Any]:
    v = document_vector(sparse_text(Chunk.from_payload(payload)))
    return {"indices": v.indices, "values": v.values}


def _headers(api_key: str | None) -> dict[str, str]:
    return {"api-key": api_key} if api_key else {}
