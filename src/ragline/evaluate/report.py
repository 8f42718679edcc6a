"""Reports of an evaluation: JSON (everything), a Markdown table, and a PNG chart of hit rate against k."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ragline.errors import MissingDependencyError

log = logging.getLogger(__name__)


def retrieval_columns(report: dict[str, Any]) -> list[str]:
    ks = report["ks"]
    return [*(f"hit@{k}" for k in ks), "mrr", "ndcg@10", *(f"recall@{k}" for k in ks)]


def markdown_table(rows: Sequence[dict[str, Any]], columns: Sequence[str], first: str = "method") -> str:
    """A Markdown table: one row per dict, ``first`` then ``columns``; floats with three decimals."""

    def cell(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.3f}"
        return "" if v is None else str(v)

    head = [first, *columns]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(cell(r.get(c)) for c in head) + " |" for r in rows]
    return "\n".join(lines)


def retrieval_markdown(report: dict[str, Any]) -> str:
    """Title, what was counted, and the table of every method."""
    columns = retrieval_columns(report)
    rows = [{"method": f"`{r['method']}`", **r["metrics"], "ms/q": r["latency_ms"]["mean"]} for r in report["methods"]]
    unit = "chunks (k prompt blocks)" if report["unit"] == "chunks" else "documents (best chunk per document)"
    notes = ", ".join(f"{k}: {v}" for k, v in (report.get("notes") or {}).items())
    return "\n".join(
        [
            f"## Retrieval: {report['dataset']}",
            "",
            f"{report['questions']} questions; hit@k and recall@k count {unit}; nDCG@10 over documents."
            + (f" ({notes})" if notes else "")
            + _timing_note(report),
            "",
            markdown_table(rows, [*columns, "ms/q"]),
            "",
        ]
    )


def _timing_note(report: dict[str, Any]) -> str:
    embed = report.get("query_embedding_ms")
    if not embed:
        return ""
    return (
        " ms/q is each method's search with the question already embedded (after a few untimed warm-up "
        f"searches); embedding a question took {embed['mean']} ms on average."
    )


def hit_chart(report: dict[str, Any], path: Path, metric: str = "hit") -> Path | None:
    """Hit rate against k, one line per method; None (and a log line) when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.warning("%s", MissingDependencyError("matplotlib", "eval"))
        return None
    ks = report["ks"]
    methods = report["methods"]
    # Many methods: the legend goes beside the plot, and line styles cycle with the colours so no two
    # lines look alike; the shipped default ("hybrid" alone, if measured) is drawn thicker.
    fig, ax = plt.subplots(figsize=(7 + (4 if len(methods) > 6 else 0), 4.5), dpi=120)
    styles = ["-", "--", ":", "-."]
    for n, r in enumerate(methods):
        default = r["method"] == "hybrid"
        ax.plot(
            ks,
            [r["metrics"][f"{metric}@{k}"] for k in ks],
            marker="o",
            markersize=4,
            linestyle=styles[(n // 10) % len(styles)],
            linewidth=2.5 if default else 1.2,
            label=r["method"] + (" (default)" if default else ""),
        )
    ax.set_xlabel("k (chunks)" if report["unit"] == "chunks" else "k (documents)")
    ax.set_ylabel(f"{metric}@k")
    ax.set_xticks(ks)
    ax.set_ylim(0, 1)
    ax.grid(True, alpha=0.3)
    ax.set_title(f"{report['dataset']}: {metric} rate against k ({report['questions']} questions)")
    if len(methods) > 6:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    else:
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def write_retrieval(report: dict[str, Any], out: Path) -> dict[str, Path]:
    """``retrieval.json``, ``retrieval.md`` and ``retrieval.png`` in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "retrieval.json", "markdown": out / "retrieval.md"}
    paths["json"].write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    paths["markdown"].write_text(retrieval_markdown(report), encoding="utf-8")
    chart = hit_chart(report, out / "retrieval.png")
    if chart is not None:
        paths["chart"] = chart
    return paths


def answers_markdown(report: dict[str, Any]) -> str:
    by_mode = report.get("modes") or {"value": report["summary"]}
    metrics = list(dict.fromkeys(k for s in by_mode.values() for k in s))
    rows = [{"metric": k, **{m: s.get(k, "") for m, s in by_mode.items()}} for k in metrics]
    return "\n".join(
        [
            f"## Answers: {report['dataset']}",
            "",
            f"{report['questions']} questions; llm {report['llm']}; groundedness by {report['groundedness_by']}.",
            "",
            markdown_table(rows, list(by_mode), first="metric"),
            "",
        ]
    )


def write_answers(report: dict[str, Any], out: Path) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "answers.json", "markdown": out / "answers.md"}
    paths["json"].write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    paths["markdown"].write_text(answers_markdown(report), encoding="utf-8")
    return paths
