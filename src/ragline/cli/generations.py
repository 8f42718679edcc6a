"""``ragline generations list|publish|rollback|prune``: the index's generations (ragline.store.generations)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ragline.cli.app import DataDir, JsonOut, app, emit_json, out, settings
from ragline.config import Settings
from ragline.errors import BadRequestError, StoreError
from ragline.store.generations import KEEP, Generations, disk_bytes

gen_app = typer.Typer(help="Generations of the index: list, publish N, rollback, prune.", no_args_is_help=True)
app.add_typer(gen_app, name="generations")


def _generations(data_dir: Any) -> Generations:
    s = settings(data_dir)
    if s.qdrant.url or s.qdrant.path:
        raise BadRequestError("generations are kept for the embedded index; this data dir uses a Qdrant server or path")
    return Generations(s.data_dir)


def summary(gens: Generations) -> list[dict[str, Any]]:
    """Every generation with what it holds, oldest first."""
    published = gens.published()
    rows = []
    for g in gens.all():
        row = g.to_json()
        row["published"] = g.number == published
        row["path"] = str(gens.path(g.number))
        row["disk_bytes"] = disk_bytes(gens.path(g.number))
        rows.append(row)
    return rows


@gen_app.command("list")
def list_generations(data_dir: DataDir = None, as_json: JsonOut = False) -> None:
    """The generations on disk: state, when, documents and chunks, model, sources, gate result, size."""
    gens = _generations(data_dir)
    rows = summary(gens)
    if as_json:
        emit_json({"published": gens.published(), "generations": rows})
        return
    if not rows:
        out.print(f"no index generations in {gens.root}: run `ragline ingest PATH` first")
    for r in rows:
        mark = "*" if r["published"] else " "
        gate = r["gate"]
        verdict = "" if not gate else (" gate passed" if gate.get("passed") else " gate FAILED")
        out.print(
            f"{mark} {r['number']:4d}  {r['state']:9s} {r['created']}  {r['documents']:6d} documents "
            f"{r['chunks']:8d} chunks  {r['disk_bytes'] / 1e6:7.1f} MB  {r['model'] or '?'}{verdict}"
            f"  {r['note']} {', '.join(r['sources'])}".rstrip()
        )


@gen_app.command("publish")
def publish(
    number: Annotated[int, typer.Argument(help="The generation to serve (see `ragline generations list`)")],
    data_dir: DataDir = None,
    as_json: JsonOut = False,
) -> None:
    """Serve generation N: readers (servers, searches) move to it within seconds."""
    gens = _generations(data_dir)
    with gens.locked():
        if number not in gens.numbers():
            raise StoreError(f"there is no generation {number} in {gens.root}")
        before = gens.published()
        gens.publish(number)
    _done(before, number, as_json)


@gen_app.command("rollback")
def rollback(data_dir: DataDir = None, as_json: JsonOut = False) -> None:
    """Serve the generation published before the current one again."""
    gens = _generations(data_dir)
    with gens.locked():
        before, target = gens.published(), gens.previous()
        if target is None:
            raise StoreError(f"no earlier generation to roll back to in {gens.root}")
        gens.publish(target)
    _done(before, target, as_json)


@gen_app.command("prune")
def prune(
    keep: Annotated[int, typer.Option(min=1, help="Full generations to keep, the published one included")] = KEEP,
    data_dir: DataDir = None,
    as_json: JsonOut = False,
) -> None:
    """Delete old and failed generations (and ones a crashed ingest left); kept ones stay."""
    gens = _generations(data_dir)
    with gens.locked():
        deleted = sorted(gens.sweep() + gens.prune(keep))
    if as_json:
        emit_json({"deleted": deleted, "published": gens.published()})
        return
    out.print(f"deleted generations {', '.join(map(str, deleted))}" if deleted else "nothing to prune")


def _done(before: int | None, after: int, as_json: bool) -> None:
    if as_json:
        emit_json({"published": after, "previous": before})
        return
    out.print(f"published generation {after} (was {before}); readers follow within seconds")


def published_note(s: Settings) -> dict[str, Any]:
    """The generation published now, for an ingest's report (empty for a Qdrant server)."""
    if s.qdrant.url or s.qdrant.path:
        return {}
    return {"generation": Generations(s.data_dir).published()}
