"""Named snapshots of the index, with a manifest that lets a restore prove it gave back the same index.

Layout: ``<data_dir>/snapshots/<name>/`` holds ``manifest.json`` and ``index/`` (what the store's
``snapshot()`` wrote: a copy of the embedded engine's folder, a Qdrant server's own snapshot file, or an
export of qdrant-client's local mode). A snapshot is built under a hidden name and renamed when whole, so
a crash never leaves a half snapshot that ``list`` shows.

The manifest records the point and document counts and a few probe searches (BM25 always; dense and hybrid
when an embedding function is given) with the ids they returned. ``restore`` replays them: the same counts
and the same ids in the same order, or it fails.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from ragline.errors import BadRequestError, EmptyIndexError, StoreError
from ragline.store.base import SearchMode, VectorStore

log = logging.getLogger(__name__)

Embed = Callable[[str], np.ndarray]  # the query embedding of the model the index was built with

MANIFEST = "manifest.json"
INDEX = "index"
PROBES = 5  # documents whose first chunk becomes a probe query
PROBE_K = 5
PROBE_WORDS = 24
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


@dataclass(slots=True)
class Probe:
    query: str
    mode: SearchMode
    ids: list[str]


@dataclass(slots=True)
class Manifest:
    name: str
    created: str
    store: str  # the backend class that wrote it; a snapshot restores into the same kind
    model: str
    dimension: int
    points: int
    documents: int
    probes: list[Probe] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Manifest:
        probes = [Probe(**p) for p in data.get("probes", [])]
        return cls(**{**data, "probes": probes})


@dataclass(slots=True)
class RestoreReport:
    manifest: Manifest
    points: int
    documents: int
    probes_checked: int

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.manifest.name,
            "points": self.points,
            "documents": self.documents,
            "probes_checked": self.probes_checked,
            "verified": True,
        }


def create(store: VectorStore, root: Path, name: str | None = None, embed: Embed | None = None) -> Manifest:
    """Snapshot the whole index into ``root/<name>`` (default name: the UTC time) and return its manifest."""
    info = store.info()
    if info is None:
        raise EmptyIndexError("there is no index to snapshot: run `ragline ingest` first")
    created = datetime.now(UTC)
    name = check_name(name or created.strftime("%Y%m%d-%H%M%S"))
    final = root / name
    if final.exists():
        raise BadRequestError(f"a snapshot named {name!r} already exists in {root}")
    partial = root / f".{name}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        store.snapshot(partial / INDEX)  # flushes first; the probes below see exactly what was copied
        manifest = Manifest(
            name=name,
            created=created.isoformat(timespec="seconds"),
            store=type(store).__name__,
            model=info.model,
            dimension=info.dimension,
            points=store.count(),
            documents=_documents(store),
            probes=probe(store, embed),
        )
        _write_json(partial / MANIFEST, manifest.to_json())
        partial.rename(final)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    log.info("snapshot %s: %d points of %d documents", name, manifest.points, manifest.documents)
    return manifest


def list_snapshots(root: Path) -> list[Manifest]:
    """Every whole snapshot under ``root``, oldest first."""
    if not root.is_dir():
        return []
    out = []
    for folder in sorted(root.iterdir()):
        if folder.name.startswith(".") or not (folder / MANIFEST).is_file():
            continue
        out.append(read_manifest(folder))
    return sorted(out, key=lambda m: (m.created, m.name))


def find(root: Path, name: str) -> Manifest:
    """The manifest of snapshot ``name``; the error lists the snapshots there are."""
    folder = root / check_name(name)
    if not (folder / MANIFEST).is_file():
        known = ", ".join(m.name for m in list_snapshots(root)) or "none"
        raise BadRequestError(f"no snapshot named {name!r} in {root} (snapshots: {known})")
    return read_manifest(folder)


def read_manifest(folder: Path) -> Manifest:
    try:
        return Manifest.from_json(json.loads((folder / MANIFEST).read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError) as e:
        raise StoreError(f"cannot read the snapshot manifest {folder / MANIFEST}: {e}") from e


def restore(store: VectorStore, root: Path, name: str, embed: Embed | None = None) -> RestoreReport:
    """Replace the index with snapshot ``name``, then check counts and probe searches match the manifest."""
    manifest = find(root, name)
    folder = root / name
    if manifest.store != type(store).__name__:
        raise StoreError(
            f"snapshot {name!r} was taken from a {manifest.store} index; the configured index is a "
            f"{type(store).__name__}: restore it with the settings it was taken with"
        )
    store.restore(folder / INDEX)
    problems = verify(store, manifest, embed)
    if problems:
        raise StoreError(f"restored snapshot {name!r} but it does not match its manifest: " + "; ".join(problems))
    log.info("restored snapshot %s and verified it", name)
    checked = sum(1 for p in manifest.probes if p.mode == "bm25" or embed is not None)
    return RestoreReport(manifest, manifest.points, manifest.documents, checked)


def verify(store: VectorStore, manifest: Manifest, embed: Embed | None = None) -> list[str]:
    """How the index differs from ``manifest`` (empty when counts and every replayable probe agree)."""
    problems = []
    points, documents = store.count(), _documents(store)
    if points != manifest.points:
        problems.append(f"{points} points, the snapshot had {manifest.points}")
    if documents != manifest.documents:
        problems.append(f"{documents} documents, the snapshot had {manifest.documents}")
    for p in manifest.probes:
        if p.mode != "bm25" and embed is None:
            continue
        ids = _search(store, p.query, p.mode, embed)
        if ids != p.ids:
            problems.append(f"the {p.mode} search {p.query[:40]!r} returned other chunks")
    return problems


def probe(store: VectorStore, embed: Embed | None = None, n: int = PROBES) -> list[Probe]:
    """Searches for the opening words of a few documents, with the chunk ids each returns."""
    firsts = sorted(
        (payload.get("doc_id", ""), str(payload.get("text", ""))) for _, payload in store.points({"chunk_index": 0})
    )
    step = max(1, len(firsts) // n)
    queries = [" ".join(text.split()[:PROBE_WORDS]) for _, text in firsts[::step][:n]]
    modes: tuple[SearchMode, ...] = ("bm25", "dense", "hybrid") if embed is not None else ("bm25",)
    return [Probe(q, mode, _search(store, q, mode, embed)) for q in queries if q for mode in modes]


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise BadRequestError(f"snapshot name {name!r}: use letters, digits, '.', '_' and '-' (at most 100)")
    return name


def _search(store: VectorStore, query: str, mode: SearchMode, embed: Embed | None) -> list[str]:
    vector = embed(query) if embed is not None and mode != "bm25" else None
    return [h.chunk.id for h in store.search(vector, PROBE_K, text=query, mode=mode)]


def _documents(store: VectorStore) -> int:
    return len({d.doc_id for d in store.documents()})


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
