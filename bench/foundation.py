"""Foundation figures on real pages: ingest rate, search latency and ask latency with the embedded LLM.

    .venv/bin/python bench/foundation.py [--corpus ray-html-2023-06] [--backend onnx] [--questions 50] [--asks 5]

Prints a table and writes bench/results/foundation-<corpus>-<backend>.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import median, need_corpora, peak_rss_mb, percentile, table, write_json

from ragline.components import Components
from ragline.config import load_settings
from ragline.ingest.local import ingest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--corpus", default="ray-html-2023-06")
    ap.add_argument("--backend", default=load_settings().embedding.backend, choices=["sentence-transformers", "onnx"])
    ap.add_argument("--questions", type=int, default=50, help="searches timed")
    ap.add_argument("--asks", type=int, default=5, help="full answers timed")
    args = ap.parse_args()
    corpus = need_corpora(args.corpus)
    questions = [
        json.loads(line)["question"]
        for line in need_corpora("ray-eval", "questions-dev.jsonl").read_text().splitlines()
        if line.strip()
    ]

    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(data_dir=Path(tmp))
        settings.embedding.backend = args.backend
        comp = Components(settings)
        comp.embedder.warm_up()
        t = time.perf_counter()
        report = ingest([corpus], comp)
        ingest_s = time.perf_counter() - t
        again = ingest([corpus], comp)

        comp.retriever.search("warm up", k=5)
        search_ms = []
        for q in questions[: args.questions]:
            t = time.perf_counter()
            comp.retriever.search(q, k=5)
            search_ms.append((time.perf_counter() - t) * 1000)

        comp.agent.warm_up()
        ask_s, first_token_s = [], []
        for q in questions[: args.asks]:
            a = comp.agent.ask(q, k=5)
            ask_s.append(a.timings["total"])
            first_token_s.append(a.timings.get("first_token", float("nan")))
        comp.close()

    row = {
        "corpus": args.corpus,
        "embedder": args.backend,
        "documents": report.documents,
        "skipped": len(report.skipped),
        "chunks": report.index_chunks,
        "ingest_s": ingest_s,
        "chunks_per_s": report.chunks_written / ingest_s,
        "reingest_s": again.seconds,
        "search_p50_ms": median(search_ms),
        "search_p95_ms": percentile(search_ms, 95),
        "ask_p50_s": median(ask_s),
        "first_token_p50_s": median(first_token_s),
        "peak_rss_mb": peak_rss_mb(),
    }
    print(table([row], list(row)))
    print("written", write_json(f"foundation-{args.corpus}-{args.backend}", row))


if __name__ == "__main__":
    main()
