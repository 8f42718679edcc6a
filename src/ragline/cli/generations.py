"""``ragline generations list|publish|rollback|prune``: the index's generations (ragline.store.generations)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Annotated, Any

import typer

from ragline.cli.app import DataDir, JsonOut, app, emit_json, out, settings
from ragline.config import Settings
from ragline.errors import StoreError
from ragline.store.generations import KEEP, Generations, GenerationsBase

gen_app = typer.Typer(
    help="Generations of the index (embedded, or collections behind a Qdrant alias): list, publish N, rollback, prune.",
    no_args_is_help=True,
)
app.add_typer(gen_app, name="generations")


def _generations(data_dir: Any) -> AbstractContextManager[GenerationsBase]:
    return opened_generations(settings(data_dir))


@contextmanager
def opened_generations(s: Settings) -> Iterator[GenerationsBase]:
    """The index's generations: folders of the embedded index, or collections behind a Qdrant alias."""
    if not (s.qdrant.url or s.qdrant.path):
        yield Generations(s.data_dir)
        return
    from ragline.store import make_store

    store = make_store(s.qdrant, s.data_dir)
    try:
        yield store.generations  # type: ignore[attr-defined]
    finally:
        store.close()


def summary(gens: GenerationsBase) -> list[dict[str, Any]]:
    """Every generation with what it holds, oldest first."""
    published = gens.published()
    rows = []
    for g in gens.all():
        row = g.to_json()
        row["published"] = g.number == published
        row["path"] = gens.location(g.number)
        row["disk_bytes"] = gens.size(g.number)
        rows.append(row)
    return rows


def _where(gens: GenerationsBase) -> str:
    return str(getattr(gens, "root", None) or getattr(gens.engine, "where", ""))  # type: ignore[attr-defined]


@gen_app.command("list")
def list_generations(data_dir: DataDir = None, as_json: JsonOut = False) -> None:
    """The generations on disk: state, when, documents and chunks, model, sources, gate result, size."""
    with _generations(data_dir) as gens:
        rows, published = summary(gens), gens.published()
        where = _where(gens)
    if as_json:
        emit_json({"published": published, "generations": rows})
        return
    if not rows:
        out.print(f"no index generations in {where}: run `ragline ingest PATH` first")
    for r in rows:
        mark = "*" if r["published"] else " "
        gate = r["gate"]
        verdict = "" if not gate else (" gate passed" if gate.get("passed") else " gate FAILED")
        size = f"{r['disk_bytes'] / 1e6:7.1f} MB" if r["disk_bytes"] is not None else ""
        out.print(
            f"{mark} {r['number']:4d}  {r['state']:9s} {r['created']}  {r['documents']:6d} documents "
            f"{r['chunks']:8d} chunks  {size}  {r['model'] or '?'}{verdict}"
            f"  {r['note']} {', '.join(r['sources'])}".rstrip()
        )


@gen_app.command("publish")
def publish(
    number: Annotated[int, typer.Argument(help="The generation to serve (see `ragline generations list`)")],
    data_dir: DataDir = None,
    as_json: JsonOut = False,
) -> None:
    """Serve generation N: readers (servers, searches) move to it within seconds."""
    with _generations(data_dir) as gens, gens.locked():
        gens.adopt()
        if number not in gens.numbers():
            raise StoreError(f"there is no generation {number} in {_where(gens)}")
        before = gens.published()
        gens.publish(number)
    _done(before, number, as_json)


@gen_app.command("rollback")
def rollback(data_dir: DataDir = None, as_json: JsonOut = False) -> None:
    """Serve the generation published before the current one again."""
    with _generations(data_dir) as gens, gens.locked():
        gens.adopt()
        before, target = gens.published(), gens.previous()
        if target is None:
            raise StoreError(f"no earlier generation to roll back to in {_where(gens)}")
        gens.publish(target)
    _done(before, target, as_json)


@gen_app.command("prune")
def prune(
    keep: Annotated[int, typer.Option(min=1, help="Full generations to keep, the published one included")] = KEEP,
    data_dir: DataDir = None,
    as_json: JsonOut = False,
) -> None:
    """Delete old and failed generations (and ones a crashed ingest left); kept ones stay."""
    with _generations(data_dir) as gens:
        with gens.locked():
            deleted = sorted(gens.sweep() + gens.prune(keep))
        published = gens.published()
    if as_json:
        emit_json({"deleted": deleted, "published": published})
        return
    out.print(f"deleted generations {', '.join(map(str, deleted))}" if deleted else "nothing to prune")


def _done(before: int | None, after: int, as_json: bool) -> None:
    if as_json:
        emit_json({"published": after, "previous": before})
        return
    out.print(f"published generation {after} (was {before}); readers follow within seconds")


def published_note(s: Settings) -> dict[str, Any]:
    """The generation published now, for an ingest's report."""
    with opened_generations(s) as gens:
        return {"generation": gens.published()}
