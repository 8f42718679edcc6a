"""Named snapshots of the index, with a manifest that lets a restore prove it gave back the same index.

Layout: ``<data_dir>/snapshots/<name>/`` holds ``manifest.json`` and ``index/`` (what the store's
``snapshot()`` wrote: a copy of the embedded engine's folder, a Qdrant server's own snapshot file, or an
export of qdrant-client's local mode). A snapshot is built under a hidden name and renamed when whole, so
a crash never leaves a half snapshot that ``list`` shows.

The manifest records the point and document counts, a digest of every document's id and content hash, and a
few probe searches (BM25 always; dense and hybrid when an embedding function is given) with the ids and
scores they returned. ``restore`` is all or nothing: the snapshot is staged beside the index and checked
there, and only a copy that matches its manifest replaces the index; otherwise the previous index stays.

The probes compare what is stable. Hits tied on score come back in any order (and at the cut-off, any of
them may be the one kept), and scores may differ in their last decimals from one CPU to another (int8 and
float kernels differ), so a dense or BM25 probe must give the same scores rank by rank within a tolerance and
the same ids apart from those tied at the cut-off. Fused (hybrid) scores move by a whole rank step when tied
hits of one list swap, so a hybrid probe compares its ids as a set, one of them allowed to differ (a tied hit
at the cut-off).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
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


# Scores agree when this close: far above float noise between CPUs, far below a rank step of fused scores.
REL_TOL, ABS_TOL = 1e-4, 1e-5


@dataclass(slots=True)
class Probe:
    query: str
    mode: SearchMode
    ids: list[str]
    scores: list[float] = field(default_factory=list)  # empty in manifests written before scores were kept

    def matches(self, hits: list[tuple[str, float]]) -> bool:
        """Whether ``hits`` (id, score) are this probe's results, up to ties and float noise."""
        if len(hits) != len(self.ids):
            return False
        ids, scores = [i for i, _ in hits], [s for _, s in hits]
        if not self.scores or self.mode == "hybrid":
            return len(set(self.ids) - set(ids)) <= (1 if self.mode == "hybrid" else 0)
        if not all(_close(a, b) for a, b in zip(self.scores, scores, strict=True)):
            return False
        before, after = dict(zip(self.ids, self.scores, strict=True)), dict(hits)
        if any(not _close(before[i], after[i]) for i in before.keys() & after.keys()):
            return False
        # An id only one side has must be tied with that side's last hit: which of the tied ones is kept varies.
        return all(_close(before[i], self.scores[-1]) for i in before.keys() - after.keys()) and all(
            _close(after[i], scores[-1]) for i in after.keys() - before.keys()
        )


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
    digest: str = ""  # of every (doc_id, doc_hash); empty in manifests written before it was kept

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
            store=_kind(store),
            model=info.model,
            dimension=info.dimension,
            points=store.count(),
            documents=_documents(store),
            probes=probe(store, embed),
            digest=digest(store),
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
    """Replace the index with snapshot ``name``, all or nothing: the staged copy must match the manifest
    (counts, documents, probe searches) before it replaces the index; otherwise the index stays as it was."""
    manifest = find(root, name)
    folder = root / name
    if manifest.store != _kind(store):
        raise StoreError(
            f"snapshot {name!r} was taken from a {manifest.store} index; the configured index is a "
            f"{_kind(store)}: restore it with the settings it was taken with"
        )

    def check(staged: VectorStore) -> None:
        problems = verify(staged, manifest, embed)
        if problems:
            raise StoreError(
                f"snapshot {name!r} does not match its manifest, so it was not restored and the index is "
                "unchanged: " + "; ".join(problems)
            )

    store.restore(folder / INDEX, check)
    log.info("restored snapshot %s and verified it", name)
    checked = sum(1 for p in manifest.probes if p.mode == "bm25" or embed is not None)
    return RestoreReport(manifest, manifest.points, manifest.documents, checked)


def _kind(store: VectorStore) -> str:
    """The backend a snapshot belongs to (a store over generations names the engine store it wraps)."""
    return str(getattr(store, "kind", type(store).__name__))


def verify(store: VectorStore, manifest: Manifest, embed: Embed | None = None) -> list[str]:
    """How the index differs from ``manifest`` (empty when counts, documents and every replayable probe agree)."""
    problems = []
    points, documents = store.count(), _documents(store)
    if points != manifest.points:
        problems.append(f"{points} points, the snapshot had {manifest.points}")
    if documents != manifest.documents:
        problems.append(f"{documents} documents, the snapshot had {manifest.documents}")
    if manifest.digest and digest(store) != manifest.digest:
        problems.append("other documents or versions than the snapshot's")
    for p in manifest.probes:
        if p.mode != "bm25" and embed is None:
            continue
        if not p.matches(_search(store, p.query, p.mode, embed)):
            problems.append(f"the {p.mode} search {p.query[:40]!r} returned other chunks")
    return problems


def digest(store: VectorStore) -> str:
    """A digest of every stored document's id and content hash: equal for the same documents in any order."""
    h = hashlib.sha256()
    for doc_id, doc_hash in sorted({(d.doc_id, d.doc_hash) for d in store.documents()}):
        h.update(f"{doc_id}\t{doc_hash}\n".encode())
    return h.hexdigest()


def probe(store: VectorStore, embed: Embed | None = None, n: int = PROBES) -> list[Probe]:
    """Searches for the opening words of a few documents, with the chunk ids each returns."""
    firsts = sorted(
        (payload.get("doc_id", ""), str(payload.get("text", ""))) for _, payload in store.points({"chunk_index": 0})
    )
    step = max(1, len(firsts) // n)
    queries = [" ".join(text.split()[:PROBE_WORDS]) for _, text in firsts[::step][:n]]
    modes: tuple[SearchMode, ...] = ("bm25", "dense", "hybrid") if embed is not None else ("bm25",)
    out = []
    for q in (q for q in queries if q):
        for mode in modes:
            hits = _search(store, q, mode, embed)
            out.append(Probe(q, mode, [i for i, _ in hits], [s for _, s in hits]))
    return out


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise BadRequestError(f"snapshot name {name!r}: use letters, digits, '.', '_' and '-' (at most 100)")
    return name


def _search(store: VectorStore, query: str, mode: SearchMode, embed: Embed | None) -> list[tuple[str, float]]:
    vector = embed(query) if embed is not None and mode != "bm25" else None
    return [(h.chunk.id, float(h.score)) for h in store.search(vector, PROBE_K, text=query, mode=mode)]


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=ABS_TOL)


def _documents(store: VectorStore) -> int:
    return len({d.doc_id for d in store.documents()})


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
