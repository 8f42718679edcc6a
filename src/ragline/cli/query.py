"""ingest, search and ask: the foundation commands."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from ragline.cli.app import (
    DataDir,
    Filter,
    JsonOut,
    K,
    app,
    components,
    emit_json,
    err,
    out,
    snippet,
    state,
)


@app.command()
def ingest(
    paths: Annotated[list[str], typer.Argument(help="Files and folders (HTML, Markdown, rst, notebooks)")],
    data_dir: DataDir = None,
    url_template: Annotated[
        str | None,
        typer.Option(help="Public URL of a file, e.g. https://docs.ray.io/en/master/{path_noext}.html"),
    ] = None,
    selector: Annotated[str | None, typer.Option(help="CSS selector of the content in HTML pages")] = None,
    recreate: Annotated[bool, typer.Option(help="Drop the index first (e.g. to change embedding model)")] = False,
    tenant: Annotated[str | None, typer.Option(help="Tenant owning these documents")] = None,
    meta: Annotated[
        list[str] | None, typer.Option("--meta", help="key=value metadata on every document (filterable)")
    ] = None,
    engine: Annotated[
        str | None, typer.Option(help="local (this process, the default) or ray (a Ray Data pipeline)")
    ] = None,
    ray_address: Annotated[
        str | None,
        typer.Option(help="Ray cluster to join: auto or ray://host:10001 (default: a local Ray on 127.0.0.1)"),
    ] = None,
    embed_actors: Annotated[int | None, typer.Option(help="ray: embedding actors (default 1)")] = None,
    embed_batch: Annotated[int | None, typer.Option(help="Chunks per embedding call and write (default 256)")] = None,
    num_gpus: Annotated[float | None, typer.Option(help="ray: GPUs per embedding actor (default 0)")] = None,
    as_json: JsonOut = False,
) -> None:
    """Index documents; unchanged ones cost nothing, changed ones are replaced, vanished ones removed."""
    from ragline.ingest.engines import run_ingest

    comp = components(data_dir)
    if url_template:
        comp.settings.parse.url_template = url_template
    if selector:
        comp.settings.parse.html_selector = selector
    comp.settings.ingest = _ingest_settings(
        comp.settings.ingest,
        engine=engine,
        ray_address=ray_address,
        embed_actors=embed_actors,
        embed_batch=embed_batch,
        num_gpus=num_gpus,
    )
    try:
        with _progress(not as_json) as tick:
            report = run_ingest(paths, comp, recreate=recreate, progress=tick, metadata=_metadata(meta, tenant))
    finally:
        comp.close()
    if as_json:
        emit_json(report.to_json())
        return
    out.print(
        f"{report.documents} documents ({report.added} added, {report.updated} updated, "
        f"{report.unchanged} unchanged, {report.deleted} deleted), {report.chunks} chunks in the index, "
        f"{report.chunks_written} written, in {report.seconds:.1f}s"
    )
    for s in report.skipped:
        out.print(f"  skipped {s.source}: {s.reason}")


def _ingest_settings(current: Any, **overrides: Any) -> Any:
    """The ingest settings with the command's options on top, validated like the rest of the settings."""
    from pydantic import ValidationError

    from ragline.config import IngestSettings
    from ragline.errors import ConfigError

    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        return IngestSettings.model_validate({**current.model_dump(), **given})
    except ValidationError as e:
        first = e.errors()[0]
        raise ConfigError(f"--{'-'.join(map(str, first['loc'])).replace('_', '-')}: {first['msg']}") from e


def _metadata(pairs: list[str] | None, tenant: str | None) -> dict[str, Any]:
    from ragline.errors import BadRequestError

    out: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise BadRequestError(f"--meta {pair!r} is not key=value")
        out[key.strip()] = value.strip()
    if tenant:
        out["tenant"] = tenant
    return out


class _progress:
    """A progress line on stderr for interactive runs; silent otherwise."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled and err.is_terminal and not state.get("quiet")
        self._p: Any = None

    def __enter__(self):
        if not self.enabled:
            return None
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self._p = Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=err)
        self._p.start()
        task = self._p.add_task("reading")
        counts = {"document": 0, "chunks": 0, "skipped": 0}

        def tick(event: str, n: int) -> None:
            counts[event] = counts.get(event, 0) + n
            self._p.update(
                task,
                description=f"{counts['document']} documents, {counts['chunks']} chunks embedded, "
                f"{counts['skipped']} skipped",
            )

        return tick

    def __exit__(self, *exc: object) -> None:
        if self._p is not None:
            self._p.stop()


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="The question")],
    k: K = None,
    filters: Filter = None,
    data_dir: DataDir = None,
    as_json: JsonOut = False,
) -> None:
    """Show the chunks that best match a question."""
    from ragline.retrieve import parse_filters

    comp = components(data_dir)
    try:
        comp.open_for_reading()
        hits = comp.retriever.search(query, k, filters=parse_filters(filters or []))
    finally:
        comp.close()
    if as_json:
        emit_json({"query": query, "hits": [h.to_json() for h in hits]})
        return
    if not hits:
        out.print("no matching chunks")
    for i, h in enumerate(hits, 1):
        out.print(f"[bold]{i}. {h.score:.3f}[/bold]  {h.chunk.title} - {h.chunk.section}")
        out.print(f"   {h.chunk.url}")
        out.print(f"   [dim]{snippet(h.chunk.text)}[/dim]")


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The question")],
    k: K = None,
    filters: Filter = None,
    stream: Annotated[bool, typer.Option("--stream", help="Print the answer as it is generated")] = False,
    data_dir: DataDir = None,
    as_json: JsonOut = False,
) -> None:
    """Answer a question from the index, citing its sources by number."""
    from ragline.agent import Done, Token
    from ragline.retrieve import parse_filters

    comp = components(data_dir)
    try:
        comp.open_for_reading()
        answer = None
        for event in comp.agent.stream(question, k, parse_filters(filters or [])):
            if isinstance(event, Token) and stream and not as_json:
                sys.stdout.write(event.text)
                sys.stdout.flush()
            elif isinstance(event, Done):
                answer = event.answer
    finally:
        comp.close()
    assert answer is not None
    if as_json:
        emit_json(answer.to_json())
        return
    if stream:
        sys.stdout.write("\n")
    else:
        out.print(answer.answer or "(the model gave no answer)")
    out.print("\n[bold]Sources[/bold]")
    for c in answer.citations:
        out.print(f"  [{c.n}] {c.hit.chunk.title} - {c.hit.chunk.section}: {c.hit.chunk.url}")
    t = answer.timings
    out.print(
        f"[dim]{answer.llm}; retrieve {t['retrieve'] * 1000:.0f} ms, generate {t['generate']:.1f} s, "
        f"{answer.usage.prompt_tokens}+{answer.usage.completion_tokens} tokens[/dim]"
    )
