"""Where an in-process query's time goes: ``Retriever.search`` stage by stage, on real questions.

    .venv/bin/python bench/query_stages.py [--size 100000] [--unique 2000] [--questions 200] [--passes 2]
        [--no-size-test] [--data-dir DIR]

Indexes: ``../shared/corpora/ray-docs`` (the real index) and the ``--size``-chunk synthetic index that
bench/serve.py builds (real ray-docs chunks repeated with perturbed vectors; both are cached in --data-dir).
Each question of the Ray dev set is searched ``--passes`` times with the default settings, after a warm-up;
the stages are the spans the retriever records (embed, search, rerank, shape, merge, extend), read from their
debug log lines, so what is measured is the code that serves. "other" is the whole call minus its stages.
Prints one table per index (p50 and mean per stage, and its share of the mean) and writes
bench/results/query-stages.json.
"""

from __future__ import annotations

import argparse
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


def profile(data_dir: Path, args: argparse.Namespace, questions: list[str]) -> list[dict[str, Any]]:
    comp = Components(bench_settings(data_dir, args))
    handler = StageLog()
    tracing = logging.getLogger("ragline.observability.tracing")
    tracing.addHandler(handler)
    tracing.setLevel(logging.DEBUG)
    tracing.propagate = False
    try:
        comp.open_for_reading()
        retriever = comp.retriever
        retriever.warm_up()
        for q in questions[:20]:  # warm caches and the model's first calls
            retriever.search(q)
        handler.take()
        per_stage: dict[str, list[float]] = defaultdict(list)
        for _ in range(args.passes):
            for q in questions:
                started = time.perf_counter()
                retriever.search(q)
                total = (time.perf_counter() - started) * 1000
                stages = handler.take()
                for name in STAGES:
                    per_stage[name].append(stages.get(name, 0.0))
                per_stage["other"].append(max(0.0, total - sum(stages.values())))
                per_stage["total"].append(total)
    finally:
        tracing.removeHandler(handler)
        comp.close()
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
    ap.add_argument("--data-dir", type=Path, default=Path(tempfile.gettempdir()) / "ragline-bench-serve")
    args = ap.parse_args()
    args.max_tokens, args.port, args.retriever_replicas = 48, 0, 1  # what bench_settings reads
    logging.getLogger("ragline.ingest").setLevel(logging.ERROR)
    import json

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
    results: dict[str, Any] = {}
    for name, path in indexes.items():
        rows = profile(path, args, questions)
        results[name] = {"chunks": chunks[name], "rows": rows}
        print(f"\n{name} ({chunks[name]} chunks, {len(questions)} questions x {args.passes})")
        print(table(rows, ["stage", "p50 ms", "p95 ms", "mean ms", "share"]))
    print("written", write_json("query-stages", {"args": {k: str(v) for k, v in vars(args).items()}, **results}))


if __name__ == "__main__":
    main()
