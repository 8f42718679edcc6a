"""Where an in-process query's time goes: ``Retriever.search`` stage by stage, on real questions.

    .venv/bin/python bench/query_stages.py [--size 100000] [--unique 2000] [--questions 200] [--passes 2]
        [--no-size-test] [--data-dir DIR]

Indexes: ``../shared/corpora/ray-docs`` (the real index) and the ``--size``-chunk synthetic index that
bench/serve.py builds (real ray-docs chunks repeated with perturbed vectors; both are cached in --data-dir).
Each question of the Ray dev set is searched ``--passes`` times with the default settings, after a warm-up;
the stages are the spans the retriever records (embed, search, rerank, shape, merge, extend), read from their
debug log lines, so what is measured is the code that serves. "other" is the whole call minus its stages.
The same questions are asked, in turn, of a retriever with ``--baseline`` retrieval settings (default
``pool=100``, the pool before it was halved). Prints one table per index and side (p50 and mean per stage, and
its share of the mean), the ratio of the whole call's p50s, and writes
bench/results/query-stages.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import need_corpora, percentile, table, write_json
from serve import bench_settings, ray_docs_index, synthetic_index

from ragline.components import Components
from ragline.embed import make_embedder
from ragline.retrieve import Retriever

STAGES = ("embed", "search", "rerank", "shape", "merge", "extend")


class StageLog(logging.Handler):
    """Collects the retriever's span timings (``stage``, ``duration_ms`` on its debug lines)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.current: dict[str, float] = defaultdict(float)

    def emit(self, record: logging.LogRecord) -> None:
        stage = getattr(record, "stage", None)
        if stage in STAGES:
            self.current[stage] += float(getattr(record, "duration_ms", 0.0))

    def take(self) -> dict[str, float]:
        out, self.current = dict(self.current), defaultdict(float)
        return out


def profile(
    data_dir: Path, args: argparse.Namespace, questions: list[str], baseline: dict[str, Any]
) -> dict[str, list[dict[str, Any]]]:
    """Stage timings of the default retriever and of one with ``baseline`` retrieval settings, question by
    question in turn, so the machine's drift hits both alike."""
    comp = Components(bench_settings(data_dir, args))
    handler = StageLog()
    tracing = logging.getLogger("ragline.observability.tracing")
    tracing.addHandler(handler)
    tracing.setLevel(logging.DEBUG)
    tracing.propagate = False
    try:
        comp.open_for_reading()
        ours = comp.retriever
        # Its own embedder: an embedder keeps its last questions' vectors, and the baseline asks each one second.
        other = Retriever(
            comp.store,
            make_embedder(comp.settings.embedding),
            comp.settings.retrieval.model_copy(update=baseline),
            ours.rerankers,
        )
        sides = {"default": ours, "baseline": other}
        for r in sides.values():
            r.warm_up()
            for q in questions[:20]:  # warm caches and the model's first calls
                r.search(q)
        handler.take()
        per_stage: dict[str, dict[str, list[float]]] = {name: defaultdict(list) for name in sides}
        for _ in range(args.passes):
            for q in questions:
                for name, retriever in sides.items():
                    started = time.perf_counter()
                    retriever.search(q)
                    total = (time.perf_counter() - started) * 1000
                    stages = handler.take()
                    for stage in STAGES:
                        per_stage[name][stage].append(stages.get(stage, 0.0))
                    per_stage[name]["other"].append(max(0.0, total - sum(stages.values())))
                    per_stage[name]["total"].append(total)
    finally:
        tracing.removeHandler(handler)
        comp.close()
    return {name: _rows(values) for name, values in per_stage.items()}


def _rows(per_stage: dict[str, list[float]]) -> list[dict[str, Any]]:
    mean_total = sum(per_stage["total"]) / len(per_stage["total"])
    rows = []
    for name in (*STAGES, "other", "total"):
        values = per_stage[name]
        mean = sum(values) / len(values)
        rows.append(
            {
                "stage": name,
                "p50 ms": round(percentile(values, 50), 2),
                "p95 ms": round(percentile(values, 95), 2),
                "mean ms": round(mean, 2),
                "share": f"{100 * mean / mean_total:.0f}%",
            }
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=100_000)
    ap.add_argument("--unique", type=int, default=2000)
    ap.add_argument("--questions", type=int, default=200)
    ap.add_argument("--passes", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1, help="embedder threads")
    ap.add_argument("--no-size-test", action="store_true")
    ap.add_argument(
        "--baseline",
        default="pool=100",
        help="retrieval settings of the side measured beside the default, KEY=VALUE[,KEY=VALUE] (pool=100: before)",
    )
    ap.add_argument("--data-dir", type=Path, default=Path(tempfile.gettempdir()) / "ragline-bench-serve")
    args = ap.parse_args()
    args.max_tokens, args.port, args.retriever_replicas = 48, 0, 1  # what bench_settings reads
    logging.getLogger("ragline.ingest").setLevel(logging.ERROR)

    questions = [
        json.loads(line)["question"]
        for line in need_corpora("ray-eval", "questions-dev.jsonl").read_text().splitlines()
        if line.strip()
    ][: args.questions]
    docs_dir = args.data_dir / "ray-docs"
    indexes = {"ray-docs": docs_dir}
    chunks = {"ray-docs": ray_docs_index(docs_dir, args)}
    if not args.no_size_test:
        big = args.data_dir / f"synthetic-{args.size}"
        chunks[f"synthetic-{args.size // 1000}k"] = synthetic_index(docs_dir, big, args)
        indexes[f"synthetic-{args.size // 1000}k"] = big
    baseline = {k: json.loads(v) for k, v in (item.split("=", 1) for item in args.baseline.split(",") if item)}
    results: dict[str, Any] = {}
    for name, path in indexes.items():
        sides = profile(path, args, questions, baseline)
        results[name] = {"chunks": chunks[name], "baseline": baseline, **sides}
        for side, rows in sides.items():
            label = "default settings" if side == "default" else f"baseline {args.baseline}"
            print(f"\n{name} ({chunks[name]} chunks, {len(questions)} questions x {args.passes}), {label}")
            print(table(rows, ["stage", "p50 ms", "p95 ms", "mean ms", "share"]))
        ours, theirs = sides["default"][-1]["p50 ms"], sides["baseline"][-1]["p50 ms"]
        print(f"{name}: whole call p50 {ours} ms vs {theirs} ms, {ours / theirs:.2f}x the baseline")
    print("written", write_json("query-stages", {"args": {k: str(v) for k, v in vars(args).items()}, **results}))


if __name__ == "__main__":
    main()
