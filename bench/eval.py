"""Retrieval benchmarks on the shared corpora: every method, one table, one chart.

    .venv/bin/python bench/eval.py ray      [--methods M,...] [--cache /tmp/ragline-eval] [--out DIR]
    .venv/bin/python bench/eval.py scifact  [--methods M,...] [--cache /tmp/ragline-eval] [--out DIR]

ray: Ray's docs (+ the supplement) with docs.ray.io URLs, the dev questions whose page maps to a source file;
hit@k over k chunks. scifact: BEIR SciFact train split; nDCG@10 and recall@100 over documents.
The index is built once per chunking / model / embedding-text choice into ``--cache`` and reused by every
method (methods differ only at query time). Writes retrieval.json / .md / .png under
bench/results/eval-<benchmark>/ and prints the table. Skips when ../shared/corpora is absent.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import CORPORA, RESULTS, need_corpora

from ragline.components import Components
from ragline.config import load_settings
from ragline.evaluate import benchmarks
from ragline.evaluate.indexing import build_index, index_dir
from ragline.evaluate.report import retrieval_markdown, write_retrieval
from ragline.evaluate.runner import evaluate

# Every method tried, in the order of the story: plain baselines (no shaping), fusion settings, the shaping
# that became the default (one chunk per page among the first, from 100 candidates), then rerank stages.
# "default" is the shipped configuration (RetrievalSettings): "hybrid", plus the page stage on an index whose
# documents average 4 chunks or more (the Ray docs; not SciFact's abstracts).
_PLAIN = "@max_per_page=none@dedupe=false@candidates=50"
_COMMON = [
    f"dense{_PLAIN}",
    f"bm25{_PLAIN}",
    f"hybrid{_PLAIN}",
    f"hybrid{_PLAIN}@dense_weight=2",
    f"hybrid{_PLAIN}@sparse_weight=2",
    "hybrid@max_per_page=none@candidates=50",
    "hybrid@max_per_page=2",
    "hybrid@candidates=50",
    "dense",
    "bm25",
    "hybrid",
    "default",
    "hybrid@candidates=200",
    "hybrid@dedupe=false",
    "hybrid@rrf_k=20",
    "hybrid@rrf_k=120",
    "hybrid@dense_weight=1.5",
    "hybrid+title",
    "hybrid+path-title",
    "hybrid+page",
    "hybrid+page:0.25",
    "hybrid+page:0.1",
    "hybrid+page:1",
    "hybrid+page:2",
    "hybrid+page@rerank_depth=100",
    "hybrid+page@rerank_depth=200",
    "hybrid+page+path-title@rerank_depth=100",
]
# Rerank stages that run the embedding model on every candidate: minutes per method here.
SLOW = [
    "hybrid+sentences@rerank_depth=20",
    "hybrid+sentences:0.5@rerank_depth=20",
    "hybrid+sentences+page@rerank_depth=20",
]
METHODS = {"ray": [*_COMMON, *SLOW], "scifact": [*_COMMON, *SLOW]}
KS = {"ray": [1, 3, 5, 10, 13], "scifact": [1, 5, 10, 100]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("benchmark", choices=sorted(benchmarks.BENCHMARKS))
    ap.add_argument("--methods", help="comma-separated method specs (default: the full list for the benchmark)")
    ap.add_argument("--fast", action="store_true", help="leave out the slow rerank stages")
    ap.add_argument("--ks", help="comma-separated k values")
    ap.add_argument("--cache", type=Path, default=Path(os.environ.get("RAGLINE_EVAL_CACHE", "/tmp/ragline-eval")))
    ap.add_argument("--out", type=Path, help="report folder (default bench/results/eval-<benchmark>)")
    ap.add_argument("--index", type=Path, help="use this index folder instead of the cache's (e.g. a copy)")
    ap.add_argument("--backend", default="onnx", choices=["onnx", "sentence-transformers"])
    ap.add_argument("--batch-size", type=int, help="texts per embedding forward pass (default: the backend's own)")
    ap.add_argument(
        "--include-code",
        action="store_true",
        help="ray: also index the code the pages literalinclude (ray-docs-code), as the rendered pages show it",
    )
    ap.add_argument("--limit", type=int, help="only the first N questions (a quick look)")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO if args.verbose else logging.ERROR, format="%(levelname)s %(message)s")
    need_corpora()
    bench = (
        benchmarks.ray(CORPORA, include_code=True)
        if args.include_code and args.benchmark == "ray"
        else benchmarks.BENCHMARKS[args.benchmark](CORPORA)
    )
    if args.limit:
        bench.questions.questions = bench.questions.questions[: args.limit]

    settings = load_settings(embedding={"backend": args.backend, "batch_size": args.batch_size})
    bench.configure(settings)
    settings.data_dir = args.index or index_dir(args.cache, bench, settings)
    comp = Components(settings)
    try:
        t0 = time.perf_counter()
        built = build_index(bench, comp)
        print(
            f"index {settings.data_dir}: {built.index_chunks} chunks, {built.documents} documents "
            f"({built.chunks_written} embedded now) in {time.perf_counter() - t0:.0f} s",
            file=sys.stderr,
        )
        methods = args.methods.split(",") if args.methods else METHODS[args.benchmark]
        if args.fast:
            methods = [m for m in methods if m not in SLOW]
        ks = [int(k) for k in args.ks.split(",")] if args.ks else KS[args.benchmark]
        report = evaluate(
            bench.questions,
            methods,
            comp.store,
            comp.embedder,
            settings.retrieval,
            ks,
            progress=lambda r: print(f"  {r.method}: {r.metrics}", file=sys.stderr),
        )
    finally:
        comp.close()
    report["index"] = {
        "path": str(settings.data_dir),
        "chunks": built.index_chunks,
        "chunk": settings.chunk.model_dump(),
    }
    paths = write_retrieval(report, args.out or RESULTS / f"eval-{args.benchmark}")
    print(retrieval_markdown(report))
    print("written: " + ", ".join(str(p) for p in paths.values()))


if __name__ == "__main__":
    main()
