"""``ragline models``: the named local models (llm.model) and where they stand; ``prepare`` joins one ahead of time."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer

from ragline.cli.app import DataDir, JsonOut, app, emit_json, out, settings
from ragline.config import LLMSettings
from ragline.generate import models

models_app = typer.Typer(help="Named local models for llm.model: list them, or prepare (join and verify) one.")
app.add_typer(models_app, name="models")


def _say(text: str) -> None:
    out.print(text, markup=False)  # "ragline[qwen-0.5b]" and paths are no markup


def _in_use(llm: LLMSettings) -> models.LocalModel | None:
    return models.find(llm.model) if llm.backend == "llama-cpp" and not llm.model_path else None


def _file(st: models.ModelState) -> str:
    if not st.model.split:
        return "in its package"
    if st.ready:
        return "joined, verified"
    return "joined, verified on load" if st.path.is_file() else "not joined"


def _installed(st: models.ModelState) -> str:
    if st.installed:
        return "yes"
    n = len(st.model.parts)
    return "no" if len(st.missing) == n else f"{n - len(st.missing)} of {n} parts"


def _disk(path: Path) -> int:
    """Bytes the file takes on disk (as du counts them); 0 when it is not there."""
    try:
        return path.stat().st_blocks * 512
    except OSError:
        return 0


@models_app.callback(invoke_without_command=True)
def models_list(ctx: typer.Context, data_dir: DataDir = None, as_json: JsonOut = False) -> None:
    """Each named model: installed?, joined?, size, path; * marks the one llm.model selects."""
    if ctx.invoked_subcommand is not None:
        return
    llm = settings(data_dir).llm
    cache = llm.model_cache or models.default_cache_dir()
    in_use = _in_use(llm)
    states = [models.state(m, cache) for m in models.MODELS.values()]
    if as_json:
        emit_json({"cache": str(cache), "models": [_row(st, st.model is in_use) for st in states]})
        return
    _say(f"{'':2}{'name':30} {'installed':14} {'file':25} {'size':>8}  path")
    for st in states:
        mark = "*" if st.model is in_use else " "
        size = f"{st.model.size / 1e6:,.0f} MB"
        _say(f"{mark} {st.model.name:30} {_installed(st):14} {_file(st):25} {size:>8}  {st.path}")
        if not st.installed:
            _say(f"{'':33}install: {st.model.install_hint}")


def _row(st: models.ModelState, in_use: bool) -> dict[str, Any]:
    m = st.model
    return {
        "name": m.name,
        "display_name": m.display_name,
        "in_use": in_use,
        "installed": st.installed,
        "missing_parts": [p.package for p in st.missing],
        "split": m.split,
        "joined": st.path.is_file() if m.split else None,
        "verified": st.ready,
        "size": m.size,
        "sha256": m.sha256,
        "path": str(st.path),
        "extra": m.extra,
        "context_window": m.context_window,
        "capable": m.capable,
    }


@models_app.command("prepare")
def models_prepare(
    name: Annotated[str, typer.Argument(help="A model name, as `ragline models` lists it")],
    data_dir: DataDir = None,
    as_json: JsonOut = False,
) -> None:
    """Join a model's parts into the model cache and verify the file (size, SHA-256), so the first answer need
    not; prints what it costs on disk."""
    model = models.require(name)
    cache = settings(data_dir).llm.model_cache or models.default_cache_dir()
    before = models.state(model, cache)
    if model.split and not before.ready and not as_json:
        _say(f"joining {len(model.parts)} parts of {model.display_name} into {before.path} …")
    started = time.perf_counter()
    path = models.resolve(model, cache)
    seconds = time.perf_counter() - started
    parts = [p.locate() for p in model.parts]
    parts_bytes = sum(_disk(p) for p in parts if p is not None)
    joined_bytes = _disk(path) if model.split else 0
    if as_json:
        emit_json(
            {
                "name": model.name,
                "path": str(path),
                "seconds": round(seconds, 2),
                "parts_bytes": parts_bytes,
                "joined_bytes": joined_bytes,
                "disk_bytes": parts_bytes + joined_bytes,
            }
        )
        return
    done = "already verified" if before.ready else f"verified in {seconds:.1f} s"
    _say(f"{model.display_name}: {path} ({done})")
    if model.split:
        _say(
            f"disk: {parts_bytes / 1e6:,.0f} MB of parts (installed packages) + {joined_bytes / 1e6:,.0f} MB joined "
            f"(model cache) = {(parts_bytes + joined_bytes) / 1e6:,.0f} MB"
        )
    else:
        _say(f"disk: {parts_bytes / 1e6:,.0f} MB, loaded where its package put it")
    _say(f"use it: RAGLINE_LLM__MODEL={model.name} (llm.model in ragline.toml)")
