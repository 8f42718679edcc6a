"""ingest, search and ask: the foundation commands."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from ragline.cli.app import (
    DataDir,
    Filter,
    JsonOut,
    K,
    app,
    emit_json,
    out,
    settings,
    snippet,
)
from ragline.cli.generations import published_note
from ragline.cli.progress import Bars, bars_enabled

if TYPE_CHECKING:
    from ragline.config import Settings
    from ragline.ingest.report import IndexReport
    from ragline.library import Ragline
    from ragline.records import Answer


@app.command()
def ingest(
    paths: Annotated[list[str], typer.Argument(help="Files and folders (HTML, Markdown, rst, notebooks, PDF, DOCX)")],
    data_dir: DataDir = None,
    url_template: Annotated[
        str | None,
        typer.Option(help="Public URL of a file, e.g. https://docs.ray.io/en/master/{path_noext}.html"),
    ] = None,
    selector: Annotated[str | None, typer.Option(help="CSS selector of the content in HTML pages")] = None,
    include_path: Annotated[
        list[Path] | None,
        typer.Option(
            "--include-path",
            help="A folder mirroring the source tree, searched for files that pages literalinclude or include",
        ),
    ] = None,
    recreate: Annotated[bool, typer.Option(help="Drop the index first (e.g. to change embedding model)")] = False,
    redact: Annotated[
        bool, typer.Option("--redact", help="Replace e-mails, phone numbers, IPs and secrets before indexing")
    ] = False,
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
    metrics_file: Annotated[
        Path | None,
        typer.Option(help="Write the ingest counters here, in the Prometheus textfile format (node exporter)"),
    ] = None,
    watch: Annotated[
        bool, typer.Option("--watch", help="Keep running: ingest again whenever a file changes (Ctrl-C stops)")
    ] = False,
    interval: Annotated[
        float, typer.Option(min=0.1, help="--watch: seconds between checks (web sources: between re-crawls)")
    ] = 5.0,
    gate: Annotated[
        Path | None,
        typer.Option("--gate", help="Questions (JSON lines: question, source) the new index must answer as well"),
    ] = None,
    gate_margin: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="--gate: how much lower hit rate and answered share may be")
    ] = 0.05,
    min_documents: Annotated[
        int, typer.Option(min=0, help="Publish the new index only if it holds at least this many documents")
    ] = 0,
    as_json: JsonOut = False,
) -> None:
    """Index documents into a new generation of the index, published (after its gate) while the previous one
    keeps serving; unchanged ones cost nothing, changed ones are replaced, vanished ones removed."""
    from ragline.ingest.gate import Gate
    from ragline.ingest.run import stamp
    from ragline.settings_base import with_changes

    s = settings(data_dir)
    if include_path:
        s.parse.include_paths = [*s.parse.include_paths, *include_path]
    if redact:
        s.parse.redact = True
    s.ingest = with_changes(
        s.ingest,
        {
            "engine": engine,
            "ray_address": ray_address,
            "embed_actors": embed_actors,
            "embed_batch": embed_batch,
            "num_gpus": num_gpus,
        },
        lambda loc: "--" + "-".join(loc).replace("_", "-"),
    )
    metadata = stamp(_metadata(meta), tenant)  # refused before any run: the library's rule for a blank tenant
    rag = _open(s)

    def run(recreate: bool, progress: Callable[[str, int], None] | None = None) -> IndexReport:
        """One ingest through the Python API (which records it for ``status``), then the metrics file."""
        report = rag.ingest(
            paths,
            metadata=metadata,
            recreate=recreate,
            url_template=url_template,
            selector=selector,
            progress=progress,
            gate=Gate(gate, gate_margin, min_documents),
        )
        if metrics_file is not None:
            from ragline.observability.ingest_metrics import write_textfile

            write_textfile(metrics_file)
        return report

    if watch:
        from ragline.cli.ops import watch_ingest

        watch_ingest(paths, rag, run, interval=interval, as_json=as_json)
        return
    bars, tick = _ingest_bars(paths, bars_enabled(as_json))
    with rag, bars:
        report = run(recreate, tick)
    generation = published_note(s)
    if as_json:
        emit_json({**report.to_json(), **generation})
        return
    out.print(
        f"{report.documents} documents ({report.added} added, {report.updated} updated, "
        f"{report.unchanged} unchanged, {report.deleted} deleted), {report.chunks_written} chunks written, "
        f"{report.chunks_deleted} deleted, in {report.seconds:.1f}s; the index holds {report.index_chunks} chunks"
        + (f" (generation {generation['generation']}, published)" if generation else "")
    )
    if report.redacted:
        out.print("  redacted " + ", ".join(f"{n} {kind}" for kind, n in sorted(report.redacted.items())))
    for skipped in report.skipped:
        out.print(f"  skipped {skipped.source}: {skipped.reason}")


def _open(s: Settings) -> Ragline:
    """The Python API over these settings: the commands below are shells over it."""
    from ragline.library import Ragline

    return Ragline(s)


def _metadata(pairs: list[str] | None) -> dict[str, Any]:
    from ragline.errors import BadRequestError

    out: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise BadRequestError(f"--meta {pair!r} is not key=value")
        out[key.strip()] = value.strip()
    return out


def _ingest_bars(paths: list[str], enabled: bool) -> tuple[Bars, Callable[[str, int], None]]:
    """Rows for documents (with a total and ETA when every path is local) and chunks embedded per second."""
    bars = Bars(enabled)
    if not enabled:
        return bars, lambda _e, _n: None
    total = None
    if not any(p.startswith(("http://", "https://")) for p in paths):
        from ragline.sources.files import iter_files

        total = sum(1 for _ in iter_files([Path(p) for p in paths]))
    skipped = 0

    def tick(event: str, n: int) -> None:
        nonlocal skipped
        if event == "chunks":
            bars.advance("chunks", n)
            return
        bars.advance("documents", n)
        if event == "skipped":
            skipped += n
            bars.update("documents", note=f"{skipped} skipped")

    bars.add("documents", "documents", total, unit="docs")
    bars.add("chunks", "chunks", None, unit="chunks")
    return bars, tick


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

    with _open(settings(data_dir)) as rag:
        hits = rag.search(query, k, filters=parse_filters(filters or []))
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
    mode: Annotated[
        str | None,
        typer.Option(help="extractive (no model), generative (the model, checked) or auto (default: answer.mode)"),
    ] = None,
    max_tokens: Annotated[int | None, typer.Option(min=1, help="The most tokens the model may write")] = None,
    history: Annotated[
        Path | None,
        typer.Option(help='Earlier turns, a JSON list of {"role": "user" | "assistant", "content"}, oldest first'),
    ] = None,
    draft: Annotated[
        bool | None,
        typer.Option(
            "--draft/--no-draft",
            help="In auto mode, show the extract at once as a draft while the model writes (default: on a "
            "terminal or with --stream, as answer.draft says)",
        ),
    ] = None,
    data_dir: DataDir = None,
    as_json: JsonOut = False,
) -> None:
    """Answer a question from the index, citing its sources by number."""
    from ragline.answer.links import citation_link
    from ragline.limits import check_mode
    from ragline.records import Done, Draft, Token
    from ragline.retrieve import parse_filters

    check_mode(mode, "--mode")
    turns = _read_history(history) if history else None
    answer = None
    shown: str | None = None  # the draft, as printed
    answered = False  # a piece of the answer was printed
    if draft is None and (as_json or not (stream or sys.stdout.isatty())):
        draft = False  # nobody would see it
    with _open(settings(data_dir)) as rag:
        where = parse_filters(filters or [])
        events = rag.stream(question, k, filters=where, history=turns, mode=mode, max_tokens=max_tokens, draft=draft)
        for event in events:
            if isinstance(event, Draft) and not as_json:
                shown = event.text
                out.print("[dim]Draft from the documentation, shown while the model writes its answer:[/dim]")
                out.print(f"[dim]{escape(event.text)}[/dim]\n")
            elif isinstance(event, Token) and stream and not as_json:
                if shown is not None and not answered:
                    if event.text == shown:  # the model's answer was not kept: the draft is the answer
                        out.print(f"[bold]Answer:[/bold] {KEPT_DRAFT}", end="")
                        answered = True
                        continue
                    out.print("[bold]Answer:[/bold]")
                answered = True
                sys.stdout.write(event.text)
                sys.stdout.flush()
            elif isinstance(event, Done):
                answer = event.answer
    assert answer is not None
    if as_json:
        emit_json(answer.to_json())
        return
    if stream:
        sys.stdout.write("\n")
    elif shown is not None and answer.answer == shown:
        out.print(f"[bold]Answer:[/bold] {KEPT_DRAFT}")
    else:
        if shown is not None:
            out.print("[bold]Answer:[/bold]")
        out.print(answer.answer or "(the model gave no answer)")
    if answer.fallback:
        out.print(f"[yellow]extractive answer: {answer.fallback}[/yellow]")
    elif not answer.grounded:
        out.print(f"[yellow]not grounded: {(answer.check or {}).get('reason')}[/yellow]")
    out.print("\n[bold]Sources[/bold]")
    base = rag.settings.answer.citation_base_url
    for c in answer.citations:
        link = escape(citation_link(c.hit.chunk.url, base))
        out.print(f"  [{c.n}] {c.hit.chunk.title} - {c.hit.chunk.section}: {link}")
    t = answer.timings
    out.print(
        f"[dim]{_made_by(answer)}; retrieve {t['retrieve'] * 1000:.0f} ms, "
        f"answer {t.get('generate', 0.0):.2f} s, {answer.usage.prompt_tokens}+{answer.usage.completion_tokens} "
        "tokens[/dim]"
    )


KEPT_DRAFT = "the draft above (the model's answer was not kept)"


def _made_by(answer: Answer) -> str:
    """How the answer was made, as the last line shows it: "extractive", or the mode with the model asked."""
    asked = not answer.llm.startswith("none")
    return f"{answer.mode} ({escape(answer.llm)})" if asked else answer.mode


def _read_history(path: Path) -> list[dict[str, str]]:
    """The turns in a --history file, checked: a list of user / assistant messages with text."""
    import json

    from ragline.errors import BadRequestError

    try:
        turns = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise BadRequestError(f"--history {path}: {e}") from None
    ok = isinstance(turns, list) and all(
        isinstance(t, dict) and t.get("role") in ("user", "assistant") and isinstance(t.get("content"), str)
        for t in turns
    )
    if not ok:
        raise BadRequestError(f'--history {path}: expected a JSON list of {{"role": "user"|"assistant", "content"}}')
    return [{"role": t["role"], "content": t["content"]} for t in turns]
