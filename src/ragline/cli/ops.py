"""delete, snapshot create|list|restore, and the loop behind ``ingest --watch``: thin shells over ragline.ops."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from ragline.cli.app import DataDir, JsonOut, app, components, emit_json, err, out
from ragline.errors import BadRequestError, EmptyIndexError

if TYPE_CHECKING:
    from ragline.components import Components
    from ragline.ingest.report import IndexReport
    from ragline.library import Ragline

T = TypeVar("T")

Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation")]


def _confirm(question: str, yes: bool) -> None:
    """Go on when ``yes`` or the user agrees; a non-interactive run without --yes is refused."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise BadRequestError(f"{question} Pass --yes to confirm when not running interactively.")
    if not typer.confirm(question, default=False):
        out.print("cancelled")
        raise typer.Exit(1)


# -- delete ----------------------------------------------------------------------------------------


@app.command()
def delete(
    source: Annotated[
        str,
        typer.Option("--source", help="URL path or folder: every document whose source starts with it is deleted"),
    ],
    yes: Yes = False,
    forget: Annotated[
        bool,
        typer.Option("--forget", help="Also remove the crawled copies and every mention in the last ingest report"),
    ] = False,
    allow_none: Annotated[
        bool, typer.Option("--allow-none", help="Exit 0 when nothing matches (default: exit 1 and say so)")
    ] = False,
    tenant: Annotated[str | None, typer.Option("--tenant", help="Delete only this tenant's documents")] = None,
    all_tenants: Annotated[
        bool, typer.Option("--all-tenants", help="Delete every tenant's documents under the prefix")
    ] = False,
    data_dir: DataDir = None,
    as_json: JsonOut = False,
) -> None:
    """Delete every chunk of the documents under a source prefix (a URL path, a file path, or a folder that
    was ingested), from dense and BM25 search alike. Where tenants' documents are under it, say whose:
    --tenant T, or --all-tenants."""
    from ragline.ops.delete import Scope, delete_sources, preview, source_prefix
    from ragline.ops.forget import forget_cached

    comp = components(data_dir)
    try:
        store = comp.store
        if store.info() is None:
            raise EmptyIndexError(f"no index in {comp.settings.data_dir.resolve()}: nothing to delete")
        prefix = source_prefix(source, store)
        scope = Scope(tenant, all_tenants)
        plan = preview(store, prefix, scope)
        if plan.chunks:
            whose = f" of tenant {tenant}" if tenant is not None else ""
            _confirm(f"Delete {plan.chunks} chunks of {plan.documents} documents{whose} under {prefix}?", yes)
            report = delete_sources(store, prefix, scope)
        else:
            report = plan
        forgotten = forget_cached(comp.settings.data_dir, prefix) if forget else None
    finally:
        comp.close()
    if as_json:
        emit_json({**report.to_json(), **({"cached_removed": forgotten} if forget else {})})
    elif report.chunks:
        out.print(f"deleted {report.chunks} chunks of {report.documents} documents under {report.prefix}")
    if forget and not as_json:
        out.print(f"removed {forgotten} crawled pages and report entries under {report.prefix}")
    if not report.chunks and not (forget and forgotten):
        # A delete that matched nothing is usually a mistyped prefix: say so, and fail unless allowed.
        err.print(
            f"nothing in the index under {report.prefix} (no source starts with it, and no ingested folder is it)"
        )
        if not allow_none:
            raise typer.Exit(1)


# -- snapshot --------------------------------------------------------------------------------------

snapshot_app = typer.Typer(help="Snapshots of the index: create, list, restore (verified).", no_args_is_help=True)
app.add_typer(snapshot_app, name="snapshot")


def _root(comp: Components) -> Path:
    return comp.settings.layout.snapshots


@snapshot_app.command("create")
def snapshot_create(
    name: Annotated[str | None, typer.Argument(help="Snapshot name (default: the UTC time)")] = None,
    data_dir: DataDir = None,
    as_json: JsonOut = False,
) -> None:
    """Copy the whole index into a named snapshot, with counts and probe searches to verify a restore."""
    from ragline.ops import snapshot

    comp = components(data_dir)
    try:
        store = comp.open_for_reading()
        manifest = snapshot.create(store, _root(comp), name, comp.embedder.embed_query)
    finally:
        comp.close()
    if as_json:
        emit_json(manifest.to_json())
        return
    out.print(
        f"snapshot {manifest.name}: {manifest.points} chunks of {manifest.documents} documents, "
        f"{len(manifest.probes)} probe searches, in {_root(comp) / manifest.name}"
    )


@snapshot_app.command("list")
def snapshot_list(data_dir: DataDir = None, as_json: JsonOut = False) -> None:
    """The snapshots of this data dir, oldest first."""
    from ragline.ops import snapshot

    comp = components(data_dir)
    manifests = snapshot.list_snapshots(_root(comp))
    if as_json:
        fields = ("name", "created", "store", "model", "dimension", "points", "documents")
        emit_json({"snapshots": [{f: getattr(m, f) for f in fields} for m in manifests]})
        return
    if not manifests:
        out.print(f"no snapshots in {_root(comp)}")
    for m in manifests:
        out.print(f"{m.name:24s} {m.created}  {m.points:8d} chunks {m.documents:6d} documents  {m.model}")


@snapshot_app.command("restore")
def snapshot_restore(
    name: Annotated[str, typer.Argument(help="The snapshot to restore (see `ragline snapshot list`)")],
    yes: Yes = False,
    data_dir: DataDir = None,
    as_json: JsonOut = False,
) -> None:
    """Replace the index with a snapshot, then check its counts and probe searches match the snapshot's."""
    from ragline.ops import snapshot

    comp = components(data_dir)
    try:
        manifest = snapshot.find(_root(comp), name)
        _confirm(f"Replace the index with snapshot {name} ({manifest.points} chunks, {manifest.created})?", yes)
        # Dense probes need the model the snapshot was built with; with another configured, BM25 probes only.
        embed = comp.embedder.embed_query if manifest.model == comp.model_id else None
        report = snapshot.restore(comp.store, _root(comp), name, embed)
    finally:
        comp.close()
    if as_json:
        emit_json(report.to_json())
        return
    out.print(
        f"restored {name}: {report.points} chunks of {report.documents} documents; "
        f"counts and {report.probes_checked} probe searches match the snapshot"
    )


# -- ingest --watch --------------------------------------------------------------------------------


def watch_ingest(
    paths: Sequence[str],
    rag: Ragline,
    ingest: Callable[[bool], IndexReport],
    *,
    interval: float,
    as_json: bool,
    polls: int | None = None,
) -> None:
    """Ingest now and after every change under ``paths`` until Ctrl-C; ``ingest(recreate)`` runs once per change.

    The index is released between runs, so other commands (search, delete, snapshot) can use it meanwhile.
    """
    from ragline.ops.watch import watch

    first = [True]

    def run() -> IndexReport:
        recreate, first[0] = first[0], False  # --recreate applies to the first run only
        try:
            return ingest(recreate)
        finally:
            rag.release()

    def show(report: IndexReport) -> None:
        data: dict[str, Any] = {"time": datetime.now().astimezone().isoformat(timespec="seconds"), **report.to_json()}
        if as_json:
            sys.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")
            sys.stdout.flush()
            return
        out.print(
            f"{data['time']}  {report.added} added, {report.updated} updated, {report.deleted} deleted, "
            f"{report.unchanged} unchanged, {report.chunks_written} chunks written; the index holds "
            f"{report.index_chunks} chunks"
        )

    if not as_json:
        out.print(f"watching {', '.join(paths)} every {interval:g} s (Ctrl-C to stop)")
    stop = StopSignals()
    try:
        with stop:
            watch(
                paths,
                stop.running(run),
                interval=interval,
                on_result=show,
                polls=polls,
                include_paths=rag.settings.parse.include_paths,
                sleep=stop.sleep,
            )
    except KeyboardInterrupt:
        pass
    finally:
        rag.close()
    if not as_json:
        out.print("stopped watching")


class StopSignals:
    """Ctrl-C and SIGTERM for a watcher: between runs they end the wait at once (no exception thrown into
    whatever the process was doing, so no lock or thread is left half-way); during a run they interrupt it
    as Ctrl-C always does. Either way the watcher closes the index and exits 0."""

    def __init__(self) -> None:
        import threading

        self.stopped = threading.Event()
        self._in_run = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        import signal

        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        import signal

        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum: int, frame: object) -> None:
        self.stopped.set()
        if self._in_run:
            raise KeyboardInterrupt

    def running(self, run: Callable[[], T]) -> Callable[[], T]:
        def wrapped() -> T:
            if self.stopped.is_set():
                raise KeyboardInterrupt
            self._in_run = True
            try:
                return run()
            finally:
                self._in_run = False

        return wrapped

    def sleep(self, seconds: float) -> None:
        if self.stopped.wait(seconds):
            raise KeyboardInterrupt  # leaves watch() between runs, where nothing is half done
