"""``ragline eval retrieval`` and ``ragline eval answers``: measure the index and the answers, write reports."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ragline.cli.app import DataDir, JsonOut, app, components, emit_json, err, out
from ragline.cli.progress import Bars, bars_enabled

if TYPE_CHECKING:
    from collections.abc import Callable

    from ragline.components import Components

eval_app = typer.Typer(help="Measure retrieval and answer quality; write JSON, Markdown and a chart.")
app.add_typer(eval_app, name="eval")

Out = Annotated[Path, typer.Option("--out", help="Folder for the reports")]
Questions = Annotated[
    Path, typer.Option("--questions", help="JSON lines {question, source} (or BEIR queries.jsonl with --qrels)")
]
Limit = Annotated[int | None, typer.Option("--limit", help="Only the first N questions")]


def _publish(
    report: dict[str, Any], paths: dict[str, Path], markdown: Callable[[dict[str, Any]], str], as_json: bool
) -> None:
    """Print a report that was written to ``paths``: as JSON (with the paths), or as Markdown and the paths."""
    if as_json:
        emit_json({**report, "written": {k: str(p) for k, p in paths.items()}})
        return
    out.print(markdown(report))
    out.print("written: " + ", ".join(str(p) for p in paths.values()))


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


@eval_app.command("retrieval")
def retrieval(
    questions: Questions,
    out_dir: Out = Path("report"),
    qrels: Annotated[Path | None, typer.Option("--qrels", help="BEIR qrels TSV: query-id, corpus-id, score")] = None,
    corpus: Annotated[
        Path | None, typer.Option("--corpus", help="BEIR corpus.jsonl to index into the data dir first (incremental)")
    ] = None,
    k: Annotated[str, typer.Option("--k", help="Comma-separated k values")] = "1,5,10,13",
    methods: Annotated[
        str,
        typer.Option(
            "--methods",
            help="Comma-separated: dense, bm25, hybrid, hybrid+rerank, MODE+STAGE (title, page, sentences, "
            "cross-encoder), MODE@setting=value",
        ),
    ] = "dense,bm25,hybrid,hybrid+rerank",
    limit: Limit = None,
    data_dir: DataDir = None,
    as_json: JsonOut = False,
) -> None:
    """Hit@k, MRR, nDCG@10 and recall@k of each method on the index in the data dir."""
    from ragline.errors import BadRequestError
    from ragline.evaluate.datasets import load_questions
    from ragline.evaluate.report import retrieval_markdown, write_retrieval
    from ragline.evaluate.runner import evaluate

    try:
        ks = [int(v) for v in _csv(k)]
    except ValueError:
        raise BadRequestError(f"--k {k!r}: expected comma-separated integers") from None
    if not ks or min(ks) < 1:
        raise BadRequestError("--k needs positive integers")
    qset = load_questions(questions, qrels)
    if limit:
        qset.questions = qset.questions[:limit]
    comp = components(data_dir)
    try:
        if corpus is not None:
            _index_beir(comp, corpus)
        comp.open_for_reading()
        with Bars(bars_enabled(as_json)) as bars:
            bars.add("methods", "methods", len(_csv(methods)), unit="methods")

            def done(r: Any) -> None:
                bars.advance("methods")
                if not as_json:
                    bars.print(f"[dim]{r.method}: {r.metrics}[/dim]")

            report = evaluate(
                qset, _csv(methods), comp.store, comp.embedder, comp.settings.retrieval, ks, progress=done
            )
    finally:
        comp.close()
    _publish(report, write_retrieval(report, out_dir), retrieval_markdown, as_json)


def _index_beir(comp: Components, corpus: Path) -> None:
    from ragline.evaluate.datasets import beir_documents
    from ragline.ingest.local import index_documents
    from ragline.records import Loaded

    name = corpus.parent.name or "beir"
    loaded = (Loaded(d.source, document=d) for d in beir_documents(corpus, name))
    report = index_documents(loaded, [], comp)
    err.print(f"[dim]indexed {corpus}: {report.documents} documents, {report.chunks_written} chunks embedded[/dim]")


@eval_app.command("answers")
def answers(
    questions: Annotated[Path, typer.Option("--questions", help="JSON lines {question[, source, reference]}")],
    out_dir: Out = Path("report"),
    references: Annotated[
        Path | None, typer.Option("--references", help="JSON lines {id or question, reference}")
    ] = None,
    k: Annotated[int | None, typer.Option("--k", "-k", help="How many chunks to retrieve")] = None,
    groundedness: Annotated[
        str, typer.Option(help="auto (an LLM judge when an OpenAI-compatible LLM is configured), embedding, llm")
    ] = "auto",
    threshold: Annotated[float, typer.Option(help="Embedding similarity that counts as support")] = 0.6,
    modes: Annotated[
        str | None,
        typer.Option(
            help="Answer modes to compare, comma-separated: extractive, generative, auto (default: answer.mode)"
        ),
    ] = None,
    judge_url: Annotated[
        str | None,
        typer.Option(
            "--judge-url",
            help="An OpenAI-compatible endpoint that grades answers 1-5 against the references (key: "
            "RAGLINE_JUDGE_API_KEY); a separate, capable model, never the one answering",
        ),
    ] = None,
    judge_model: Annotated[str, typer.Option("--judge-model", help="The judge's model name")] = "gpt-4o",
    limit: Limit = None,
    data_dir: DataDir = None,
    as_json: JsonOut = False,
) -> None:
    """Answer each question; score citation validity, groundedness and, with references, the answer against
    them (token F1, key points, refusals) and, with a judge, on a 1-5 rubric."""
    from ragline.errors import BadRequestError
    from ragline.evaluate.answers import EmbeddingSupport, LLMSupport, evaluate_answers
    from ragline.evaluate.datasets import load_answer_questions, page_key
    from ragline.evaluate.report import answers_markdown, write_answers
    from ragline.limits import check_mode

    if groundedness not in ("auto", "embedding", "llm"):
        raise BadRequestError(f"--groundedness {groundedness!r}: auto, embedding or llm")
    asked = _csv(modes) if modes else []
    for m in asked:
        check_mode(m, "--modes")
    qs = load_answer_questions(questions, references)[: limit or None]
    comp = components(data_dir)
    try:
        comp.open_for_reading()
        by = groundedness
        if by == "auto":
            by = "llm" if comp.settings.llm.backend == "openai" else "embedding"
        support = LLMSupport(comp.generator) if by == "llm" else EmbeddingSupport(comp.embedder, threshold)
        judge = _judge(judge_url, judge_model, comp) if judge_url and any(q.reference for q in qs) else None
        agent = comp.agent
        run_modes = asked or [agent.resolve_mode(None)]
        rows: list[dict[str, Any]] = []
        by_mode: dict[str, dict[str, float]] = {}
        with Bars(bars_enabled(as_json)) as bars:
            bars.add("questions", "questions", len(qs) * len(run_modes), unit="questions")

            def answered(r: dict[str, Any]) -> None:
                bars.advance("questions")
                if not as_json:
                    bars.print(f"[dim]{r['qid']}: grounded {r['groundedness']:.2f}[/dim]")

            for m in run_modes:
                agent.ask("warm up", k=k, mode=m)  # the first answer would carry the model's load time
                mode_rows, by_mode[m] = evaluate_answers(
                    qs,
                    # draft=None: as a streaming client is answered (answer.draft), so that its time is measured
                    lambda q, m=m: agent.ask(q, k=k, mode=m, draft=None),  # type: ignore[misc]
                    support,
                    judge,
                    key=page_key,
                    progress=answered,
                    embedder=comp.embedder,
                )
                rows.extend({"asked_mode": m, **r} for r in mode_rows)
        report = {
            "dataset": questions.stem,
            "questions": len(qs),
            "llm": comp.generator.name,
            "groundedness_by": by if by == "llm" else f"embedding (threshold {threshold})",
            "judge": judge.name if judge is not None else None,
            "summary": by_mode[run_modes[0]],
            "modes": by_mode,
            "answers": rows,
        }
    finally:
        comp.close()
    _publish(report, write_answers(report, out_dir), answers_markdown, as_json)


def _judge(url: str, model: str, comp: Components) -> Any:
    """The grading model at ``url``; refused when it is the model that writes the answers."""
    import os

    from ragline.errors import ConfigError
    from ragline.generate import make_generator

    llm = comp.settings.llm
    if llm.backend == "openai" and (llm.base_url or "").rstrip("/") == url.rstrip("/") and llm.model == model:
        raise ConfigError("--judge-url and --judge-model name the model that writes the answers; a judge is another")
    from pydantic import SecretStr

    key = os.environ.get("RAGLINE_JUDGE_API_KEY")
    settings = llm.model_copy(
        update={
            "backend": "openai",
            "base_url": url,
            "model": model,
            "api_key": SecretStr(key) if key else None,
            "temperature": 0.0,
        }
    )
    return make_generator(settings)
