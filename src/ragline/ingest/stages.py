"""The ingest stages on plain rows, so that Ray Data can run them on any node of a cluster.

Rows hold only strings, numbers, bytes (pickled records) and, after embedding, a vector, and every row
of a stage has the same columns, so each block has one schema. The stages:

    file row -> parse_file (map) -> chunk_rows (flat_map) -> EmbedChunks (map_batches, actors)
      -> write_chunks (the driver, or writer actors) -> the driver commits

``chunk_rows`` emits one ``chunk`` row per chunk of a new or changed document, then one ``doc`` row per
document (unchanged and skipped ones too), which tells the driver what each document became.
"""

from __future__ import annotations

import json
import os
import pickle
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ragline.chunk import Chunker, make_chunker
from ragline.config import ChunkSettings, EmbeddingSettings, ParseSettings, QdrantSettings
from ragline.embed import make_embedder
from ragline.errors import ConfigError, SourceError
from ragline.ingest.changes import Change, change_of
from ragline.ingest.inputs import plan_inputs
from ragline.ingest.parallel import CONCURRENT_BACKENDS, ingest_embedder
from ragline.records import Chunk, Document, doc_id_for, tenant_of
from ragline.sources.files import LocalFile, load_document
from ragline.store.base import IndexInfo, VectorStore

Batch = dict[str, np.ndarray]

CHUNK, DOC, WROTE = "chunk", "doc", "wrote"  # the kinds of row (column "row")
SKIPPED = "skipped"  # a document's "change" when it could not be used
DUPLICATE = "duplicate"  # ... and when an earlier file has the same URL


def list_files(paths: Sequence[str | Path], parse: ParseSettings) -> tuple[list[str], list[str], list[dict[str, Any]]]:
    """Folder origins, missing paths and one row per file to ingest (paths only: workers read the files).

    The same files, order, origins and fallback sources as the in-process engine's ``read_sources``; a row's
    ``seq`` is its input's position in that order (missing paths come first).
    """
    inputs = plan_inputs(paths)
    if inputs.urls:
        raise ConfigError(f"the ray engine ingests files and folders; crawl {inputs.urls[0]} with --engine local")
    rows: list[dict[str, Any]] = [
        {
            "path": str(item.file.path),
            "root": str(item.file.root),
            "relpath": item.file.relpath,
            "explicit": item.file.explicit,
            "origin": item.origin,
            "fallback": item.fallback,
        }
        for item in inputs.files(parse)
    ]
    missing = inputs.missing
    origins = inputs.origins
    for seq, row in enumerate(rows, start=len(missing)):
        row["seq"] = seq
    return origins, missing, rows


def load_file(row: Mapping[str, Any], parse: ParseSettings, metadata: Mapping[str, Any]) -> Document:
    """Read and parse one file row; every failure, a parser's crash included, is a SourceError."""
    file = LocalFile(
        path=Path(row["path"]), root=Path(row["root"]), relpath=str(row["relpath"]), explicit=bool(row["explicit"])
    )
    try:
        doc = load_document(file, parse)
    except SourceError:
        raise
    except Exception as e:  # one bad document must cost that document, not the whole job
        raise SourceError(f"parser failed: {type(e).__name__}: {e}") from e
    doc.metadata.update(metadata)
    return doc


class UrlClaims:
    """Which file first claimed each URL (a Ray actor): the first in file order wins, as in-process.

    Files are parsed roughly in order, so a later copy of a page usually learns at once that it lost and
    costs no chunking or embedding; when two race, both go through and the driver settles it.
    """

    def __init__(self) -> None:
        self._first: dict[str, int] = {}

    def claim(self, doc_id: str, seq: int) -> int:
        """The lowest file position that claimed ``doc_id`` so far, this one included."""
        held = self._first.get(doc_id)
        if held is None or seq < held:
            self._first[doc_id] = held = seq
        return held


def parse_file(
    row: dict[str, Any],
    *,
    parse: ParseSettings,
    metadata: Mapping[str, Any],
    stored: Mapping[str, Sequence[str]],
    claims: Any = None,
) -> dict[str, Any]:
    """Parse a file and decide what it is to the index (``stored``: doc_id -> hashes held; ``claims``: a
    UrlClaims actor handle)."""

    def parsed(
        doc_id: str,
        source: str,
        change: str,
        *,
        doc_hash: str = "",
        reason: str = "",
        doc: bytes = b"",
        redacted: str = "",
    ) -> dict[str, Any]:
        return {
            "seq": row["seq"],
            "fallback": row["fallback"],
            "origin": row["origin"],
            "doc_id": doc_id,
            "source": source,
            "change": change,
            "doc_hash": doc_hash,
            "reason": reason,
            "doc": doc,
            "redacted": redacted,
        }

    try:
        doc = load_file(row, parse, metadata)
    except SourceError as e:
        tenant = tenant_of(dict(metadata))
        return parsed(doc_id_for(row["fallback"], tenant), row["fallback"], SKIPPED, reason=str(e) or "unreadable")
    if claims is not None and _claim(claims, doc.doc_id, row["seq"]) != row["seq"]:
        return parsed(doc.doc_id, doc.source, DUPLICATE, reason=f"same URL as another document: {doc.source}")
    doc_hash = doc.content_hash
    change = change_of(stored.get(doc.doc_id), doc_hash)
    # Unchanged documents travel no further than this row: no chunking, no embedding, no writes.
    blob = b"" if change is Change.UNCHANGED else pickle.dumps(doc, protocol=pickle.HIGHEST_PROTOCOL)
    redacted = json.dumps(doc.redacted, sort_keys=True) if doc.redacted else ""
    return parsed(doc.doc_id, doc.source, change.value, doc_hash=doc_hash, doc=blob, redacted=redacted)


def _claim(claims: Any, doc_id: str, seq: int) -> int:
    import ray

    return int(ray.get(claims.claim.remote(doc_id, seq)))


_CHUNKERS: dict[str, Chunker] = {}


def chunker_for(chunk: ChunkSettings, embedding: EmbeddingSettings) -> Chunker:
    """The chunker these settings build, made once per worker process: the chunker and, for token sizes, the
    embedder whose tokenizer counts (its model is never loaded for that)."""
    key = chunk.model_dump_json() + embedding.model_dump_json()
    if key not in _CHUNKERS:
        _CHUNKERS[key] = make_chunker(chunk, lambda: make_embedder(embedding))
    return _CHUNKERS[key]


def _row(
    kind: str, parsed: Mapping[str, Any], *, count: int = 0, index: int = -1, text: str = "", chunk: bytes = b""
) -> dict[str, Any]:
    return {
        "row": kind,
        "seq": parsed["seq"],
        "doc_id": parsed["doc_id"],
        "doc_hash": parsed["doc_hash"],
        "source": parsed["source"],
        "fallback": parsed["fallback"],
        "change": parsed["change"],
        "reason": parsed["reason"],
        "redacted": parsed.get("redacted", ""),  # JSON counts by kind, or ""
        "count": count,
        "index": index,
        "text": text,
        "chunk": chunk,
    }


def chunk_rows(parsed: dict[str, Any], *, chunk: ChunkSettings, embedding: EmbeddingSettings) -> list[dict[str, Any]]:
    """A new or changed document's chunk rows, then its ``doc`` row (which counts them)."""
    if parsed["change"] in (SKIPPED, DUPLICATE, Change.UNCHANGED.value):
        return [_row(DOC, parsed)]
    doc: Document = pickle.loads(parsed["doc"])
    try:
        chunks = chunker_for(chunk, embedding).split(doc, origin=parsed["origin"])
    except SourceError as e:  # over a bound (max_chunks): skipped with the reason
        return [_row(DOC, {**parsed, "change": SKIPPED, "reason": str(e)})]
    except Exception as e:  # same rule as parsing: report the document, keep going
        return [_row(DOC, {**parsed, "change": SKIPPED, "reason": f"chunking failed: {type(e).__name__}: {e}"})]
    rows = [
        _row(CHUNK, parsed, index=c.index, text=c.embedding_text(), chunk=pickle.dumps(c, pickle.HIGHEST_PROTOCOL))
        for c in chunks
    ]
    rows.append(_row(DOC, parsed, count=len(chunks)))
    return rows


class EmbedChunks:
    """A Ray Data actor: embeds the chunk rows of each batch (sorted by length inside the call)."""

    def __init__(self, embedding: EmbeddingSettings, workers: int = 0) -> None:
        if embedding.backend not in CONCURRENT_BACKENDS and embedding.threads is None:
            # Ray sets OMP_NUM_THREADS=1 in workers: give the model the node's cores.
            embedding = embedding.model_copy(update={"threads": os.cpu_count() or 1})
        self.embedder, _ = ingest_embedder(embedding, workers)  # data parallel where the backend allows
        self.embedder.warm_up()

    def __call__(self, batch: Batch) -> Batch:
        is_chunk = np.asarray(batch["row"] == CHUNK, dtype=bool)
        vectors = np.zeros((len(is_chunk), self.embedder.dimension), dtype=np.float32)
        if is_chunk.any():
            vectors[is_chunk] = self.embedder.embed_documents([str(t) for t in batch["text"][is_chunk]])
        out = {k: v for k, v in batch.items() if k != "text"}  # the text is inside the pickled chunk too
        out["vector"] = vectors
        return out


def write_chunks(store: VectorStore, batch: Batch) -> Batch:
    """Upsert every chunk but documents' first ones; return what the driver needs to commit documents:
    the ``doc`` rows, the first chunks (with vectors) and one ``wrote`` row per document version, whose
    ``written`` column lists the chunk positions now in the index."""
    kinds, index = batch["row"], batch["index"]
    rest = np.flatnonzero((kinds == CHUNK) & (index != 0))
    keep = np.flatnonzero((kinds != CHUNK) | (index == 0))
    if len(rest):
        store.upsert([pickle.loads(batch["chunk"][i]) for i in rest], batch["vector"][rest])
    wrote: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i in rest:
        wrote[(str(batch["doc_id"][i]), str(batch["doc_hash"][i]))].append(int(index[i]))
    empty = {"seq": -1, "source": "", "fallback": "", "change": "", "reason": "", "redacted": ""}
    extra = [_row(WROTE, {**empty, "doc_id": d, "doc_hash": h}, count=len(ix)) for (d, h), ix in wrote.items()]
    out: Batch = {}
    for k, v in batch.items():
        if k == "vector":
            out[k] = np.concatenate([v[keep], np.zeros((len(extra), v.shape[1]), dtype=np.float32)])
        else:
            values = [*v[keep].tolist(), *(r[k] for r in extra)]
            out[k] = np.array(values, dtype=np.int64 if k in _INT_COLUMNS else object)
    out["written"] = np.array([""] * len(keep) + [",".join(map(str, ix)) for ix in wrote.values()], dtype=object)
    return out


_INT_COLUMNS = frozenset({"seq", "count", "index"})


class WriteChunks:
    """A Ray Data actor writing to a Qdrant server; many run in parallel, each with its own connection."""

    def __init__(self, qdrant: QdrantSettings, data_dir: Path, info: IndexInfo) -> None:
        from ragline.store import make_store

        self.store = make_store(qdrant, data_dir)
        self.store.open(info)

    def __call__(self, batch: Batch) -> Batch:
        return write_chunks(self.store, batch)


def unpickle_chunk(blob: bytes) -> Chunk:
    chunk: Chunk = pickle.loads(blob)
    return chunk
