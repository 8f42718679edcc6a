"""The Ray Data ingest engine: the in-process engine's stages and incremental rules, streamed on a cluster.

    files -> parse (map) -> chunk (flat_map) -> embed (map_batches on an actor pool) -> write -> commit

The driver lists file paths (never their content) and reads the index state once; workers parse and
decide what changed, so unchanged documents are never chunked or embedded. Embedded chunks stream back
in batches: with the embedded Qdrant engine (one process may open a shard) the driver writes them; with
a Qdrant server, writer actors write in parallel and send back only what the driver needs to commit
each document (its first chunk, written last; see ``ragline.ingest.writer``). Same files, same chunks, same
point ids and payloads as the in-process engine.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Unpack

import numpy as np

from ragline.components import Components
from ragline.config import EmbeddingSettings, IngestSettings, Settings
from ragline.errors import MissingDependencyError, SourceError
from ragline.ingest.changes import Change, IndexState
from ragline.ingest.report import IndexReport, Skipped
from ragline.ingest.run import IngestOptions, Progress, finish
from ragline.ingest.stages import (
    CHUNK,
    DOC,
    DUPLICATE,
    SKIPPED,
    WROTE,
    Batch,
    EmbedChunks,
    UrlClaims,
    WriteChunks,
    chunk_rows,
    list_files,
    load_file,
    parse_file,
    unpickle_chunk,
    write_chunks,
)
from ragline.ingest.writer import IndexWriter, StreamCommitter
from ragline.privacy import add_counts
from ragline.ray_local import start_local_ray, stop_local_ray
from ragline.records import doc_id_for, tenant_of
from ragline.store.base import IndexInfo, VectorStore

log = logging.getLogger(__name__)

FILES_PER_TASK = 4  # parse tasks are short; a few files each keeps scheduling overhead small


@dataclass(frozen=True, slots=True)
class DocEvent:
    """What one input became, as the driver learns it from a ``doc`` row."""

    seq: int
    doc_id: str
    doc_hash: str
    source: str
    fallback: str
    change: str
    reason: str
    redacted: str = ""  # JSON counts by kind of what redaction replaced, or ""


def ingest(paths: Sequence[str | Path], components: Components, **options: Unpack[IngestOptions]) -> IndexReport:
    """Bring the index in line with ``paths`` (like the in-process engine), running the stages on Ray."""
    recreate, progress = options.get("recreate", False), options.get("progress")
    metadata = options.get("metadata")
    t0 = time.perf_counter()
    settings = components.settings
    origins, missing, files = list_files(paths, settings.parse)
    store = components.store
    info = components.index_info()
    store.open(info, recreate=recreate)
    tenant = tenant_of(metadata or {})
    state = IndexState(store.documents(), tenant)

    run = _Run(store, progress)
    for seq, path in enumerate(missing):
        run.event(DocEvent(seq, doc_id_for(path, tenant), "", path, path, SKIPPED, "not found"))
    if files:
        started_here = not _ray_running()
        ray = connect(settings.ingest.ray_address)
        try:
            for batch in _pipeline(ray, files, _writing_to(settings, store), state, info, metadata or {}):
                run.consume(batch if settings.qdrant.url else write_chunks(store, batch))
                log.info("indexed %d chunks so far", run.chunks_written + run.committer.chunks_written)
        finally:
            if started_here:
                stop_local_ray()
    report = run.report(components, files, metadata or {})
    finish(report, store, state, origins, run.seen, t0)
    return report


def connect(address: str | None) -> Any:
    """The ray module, joined to ``address`` ("auto", "ray://host:10001"), or to a new Ray on loopback."""
    if not _ray_running():
        # Ray's own loggers follow the level the application chose (the CLI: warnings unless -v).
        options: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.getLogger().getEffectiveLevel()}
        if address is None:
            start_local_ray(num_cpus=None, **options)
        else:
            import ray

            ray.init(address=address, **options)
            log.info("connected to Ray at %s", address)
    import ray

    return ray


def _ray_running() -> bool:
    try:
        import ray
    except ImportError as e:
        raise MissingDependencyError("ray", "ray") from e
    return bool(ray.is_initialized())


def _writing_to(settings: Settings, store: VectorStore) -> Settings:
    """Settings whose Qdrant collection is the one ``store`` writes: a new generation's collection, not the
    alias readers query (the writer actors of a Qdrant server open their own connections)."""
    engine = getattr(store, "engine", None)
    collection = getattr(engine, "collection", None)
    if not settings.qdrant.url or not isinstance(collection, str) or collection == settings.qdrant.collection:
        return settings
    return settings.model_copy(update={"qdrant": settings.qdrant.model_copy(update={"collection": collection})})


def _pipeline(
    ray: Any,
    files: list[dict[str, Any]],
    settings: Settings,
    state: IndexState,
    info: IndexInfo,
    metadata: Mapping[str, Any],
) -> Iterator[Batch]:
    """The streaming dataset, consumed batch by batch (never materialised in the driver)."""
    ing = settings.ingest
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    stored = {doc_id: sorted(hashes) for doc_id, hashes in state.hashes.items()}
    claims = ray.remote(num_cpus=0)(UrlClaims).remote()
    ds = (
        ray.data.from_items(files, override_num_blocks=max(1, math.ceil(len(files) / FILES_PER_TASK)))
        .map(
            parse_file,
            fn_kwargs={"parse": settings.parse, "metadata": dict(metadata), "stored": stored, "claims": claims},
            num_cpus=ing.parse_cpus,
        )
        .flat_map(
            chunk_rows,
            fn_kwargs={"chunk": settings.chunk, "embedding": settings.embedding},
            num_cpus=ing.parse_cpus,
        )
        .map_batches(
            EmbedChunks,
            fn_constructor_kwargs={"embedding": actor_embedding(settings.embedding, ing), "workers": ing.embed_workers},
            compute=ray.data.ActorPoolStrategy(size=ing.embed_actors),
            batch_size=ing.embed_batch,
            batch_format="numpy",
            num_cpus=ing.embed_cpus,
            num_gpus=ing.num_gpus or None,
        )
    )
    if settings.qdrant.url:  # a server takes concurrent writers; the embedded engine does not
        ds = ds.map_batches(
            WriteChunks,
            fn_constructor_kwargs={"qdrant": settings.qdrant, "data_dir": settings.data_dir, "info": info},
            compute=ray.data.ActorPoolStrategy(size=ing.writers),
            batch_size=None,
            batch_format="numpy",
            num_cpus=0.1,  # writers wait on the server; they must not starve the parse tasks of CPUs
        )
    yield from ds.iter_batches(batch_size=None, batch_format="numpy", prefetch_batches=1)


def actor_embedding(embedding: EmbeddingSettings, ing: IngestSettings) -> EmbeddingSettings:
    """The embedding settings of an actor: with GPUs, sentence-transformers on cuda (ONNX here is CPU-only)."""
    if not ing.num_gpus:
        return embedding
    if embedding.backend == "onnx":
        log.info("GPUs requested: embedding with sentence-transformers on cuda instead of ONNX (same model)")
    device = embedding.device if embedding.device.startswith("cuda") else "cuda"
    return embedding.model_copy(update={"backend": "sentence-transformers", "device": device})


class _Run:
    """The driver's side of one run: commits documents as their chunks land, and records what each input became."""

    def __init__(self, store: VectorStore, progress: Progress | None) -> None:
        self.store = store
        self.committer = StreamCommitter(store)
        self.events: list[DocEvent] = []
        self.chunks_written = 0
        self.seen: set[str] = set()
        self._tick = progress or (lambda _e, _n: None)

    def event(self, e: DocEvent, n_chunks: int = 0) -> None:
        self.events.append(e)
        if e.change in (Change.ADDED.value, Change.UPDATED.value):
            self.committer.expect(e.doc_id, e.doc_hash, n_chunks)
        self._tick("skipped" if e.change in (SKIPPED, DUPLICATE) else "document", 1)

    def consume(self, batch: Batch) -> None:
        kinds = batch["row"]
        for i in range(len(kinds)):
            kind = kinds[i]
            if kind == WROTE:
                n = int(batch["count"][i])
                written = (int(x) for x in str(batch["written"][i]).split(","))
                self.committer.wrote(str(batch["doc_id"][i]), str(batch["doc_hash"][i]), written)
                self.chunks_written += n
                self._tick("chunks", n)
            elif kind == CHUNK:  # a first chunk: the writers leave it to the commit
                self.committer.hold_first(unpickle_chunk(batch["chunk"][i]), np.asarray(batch["vector"][i]))
                self._tick("chunks", 1)
            elif kind == DOC:
                self.event(
                    DocEvent(
                        seq=int(batch["seq"][i]),
                        doc_id=str(batch["doc_id"][i]),
                        doc_hash=str(batch["doc_hash"][i]),
                        source=str(batch["source"][i]),
                        fallback=str(batch["fallback"][i]),
                        change=str(batch["change"][i]),
                        reason=str(batch["reason"][i]),
                        redacted=str(batch["redacted"][i]) if "redacted" in batch else "",
                    ),
                    n_chunks=int(batch["count"][i]),
                )

    def report(self, components: Components, files: list[dict[str, Any]], metadata: Mapping[str, Any]) -> IndexReport:
        """Replay the inputs in file order with the in-process engine's rules (first of a URL wins), and
        rewrite documents whose URL several files claimed: their versions fought over the same points."""
        report = IndexReport()
        winners: dict[str, DocEvent] = {}
        contested: set[str] = set()
        for e in sorted(self.events, key=lambda e: e.seq):
            if e.change == SKIPPED:
                winners.setdefault(e.doc_id, e)
                report.skipped.append(Skipped(e.fallback, e.reason))
                continue
            if e.change == DUPLICATE or e.doc_id in winners:
                if e.change != DUPLICATE:  # it learnt too late that it lost: its chunks went in
                    contested.add(e.doc_id)
                report.skipped.append(Skipped(e.fallback, f"same URL as another document: {e.source}"))
                continue
            winners[e.doc_id] = e
            report.documents += 1
            if e.redacted:
                add_counts(report.redacted, json.loads(e.redacted))
            report.count(Change(e.change))
        self.seen = set(winners)
        report.chunks_written = self.chunks_written + self.committer.chunks_written
        for doc_id in sorted(contested):
            report.chunks_written += self._rewrite(components, files, winners[doc_id], metadata)
        if self.committer.pending:
            log.error("%d document versions were not committed", self.committer.pending)
        return report

    def _rewrite(
        self, components: Components, files: list[dict[str, Any]], winner: DocEvent, metadata: Mapping[str, Any]
    ) -> int:
        """Replace every point of a contested URL with its first file's version, in the driver."""
        log.info("rewriting %s: a later file with the same URL was indexed before it", winner.source)
        self.committer.discard(winner.doc_id)
        self.store.delete_document(winner.doc_id)
        if winner.change == SKIPPED:
            return 0
        row = next(f for f in files if f["seq"] == winner.seq)
        try:
            doc = load_file(row, components.settings.parse, metadata)
            chunks = components.chunker.split(doc, origin=row["origin"])
        except SourceError as e:  # the file changed under us; the next run settles it
            log.warning("could not re-read %s: %s", row["path"], e)
            return 0
        writer = IndexWriter(self.store, components.embedder)
        writer.add(doc.doc_id, doc.content_hash, chunks)
        return writer.flush()
