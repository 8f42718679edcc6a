"""How far the int8 ONNX vectors move from the fp32 model, and what that does to search results.

    .venv/bin/python bench/int8_drift.py [--limit 400] [--k 5]

Embeds the chunks of this repository's docs/ (as an ingest chunks them) with the fp32 reference
(sentence-transformers on torch) and with both int8 paths of the onnx backend: "weights" (the shipped int8
file, float products) and "dynamic" (int8 activations too, int8 products; the default). Reports, per int8 path,
the mean and minimum cosine of each chunk's vector to the fp32 one, and for a set of questions how many of
the top-k chunks stay the same (overlap@k) and how often the first one changes. A "mixed" row ranks the
dynamic-int8 index with fp32 question vectors: an index built with one set of kernels and queried with another.

Prints a table and writes bench/results/int8_drift.json, with the CPU it ran on.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, table, write_json

from ragline.chunk import token_chunker
from ragline.config import ChunkSettings, EmbeddingSettings, ParseSettings
from ragline.embed import Embedder, make_embedder
from ragline.sources.files import iter_files, load_document

QUESTIONS = [
    "How do I use a Qdrant server instead of the embedded engine?",
    "How do I ingest a folder of Markdown files?",
    "How do I set an API key for the HTTP API?",
    "How do I answer with a local language model?",
    "What does the url template do?",
    "How do I delete the documents under a source prefix?",
    "How do I run ingestion on a Ray cluster?",
    "Which metrics does the server export?",
    "How do I filter search results by tenant?",
    "How do I evaluate retrieval quality?",
    "How do I use ragline from Python?",
    "How do I connect an MCP client?",
    "What happens when a file is removed from the folder?",
    "How do I take a snapshot of the index?",
    "How do I stream an answer?",
    "What does the grounding check do?",
    "How is the settings file found?",
    "How do I crawl a documentation site?",
    "How large can a chunk be?",
    "How do I serve with Ray Serve?",
]

PATHS = {
    "fp32": {"backend": "sentence-transformers"},
    "int8 weights": {"backend": "onnx", "onnx_quantization": "weights"},
    "int8 dynamic": {"backend": "onnx", "onnx_quantization": "dynamic"},
}


def cpu() -> dict[str, Any]:
    """The CPU's model name and the int8-relevant instruction sets it has."""
    model = platform.processor() or "unknown"
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    flags: set[str] = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "amx_tile")
    return {"model": model, "flags": {f: f in flags for f in wanted}}


def docs_chunks(embedder: Embedder, limit: int) -> list[str]:
    """What an ingest of docs/ embeds, in file order, at most ``limit`` texts."""
    size = ChunkSettings()
    chunker = token_chunker(size.size, size.overlap, embedder.count_tokens, embedder.max_tokens)
    texts: list[str] = []
    for f in iter_files([ROOT / "docs"]):
        doc = load_document(f, ParseSettings(url_template="docs/{path}"))
        texts.extend(c.embedding_text() for c in chunker.split(doc))
    return texts[:limit]


def top(index: np.ndarray, queries: np.ndarray, k: int) -> list[list[int]]:
    scores = queries @ index.T
    return [list(np.argsort(-row, kind="stable")[:k]) for row in scores]


def ranks_compared(ref: list[list[int]], other: list[list[int]], k: int) -> dict[str, float]:
    overlap = [len(set(a) & set(b)) / k for a, b in zip(ref, other, strict=True)]
    return {
        f"overlap@{k}": float(np.mean(overlap)),
        "same_order": float(np.mean([a == b for a, b in zip(ref, other, strict=True)])),
        "top1_changed": float(np.mean([a[0] != b[0] for a, b in zip(ref, other, strict=True)])),
    }


def score_shift(ref: tuple[np.ndarray, np.ndarray], other: tuple[np.ndarray, np.ndarray], k: int) -> dict[str, float]:
    """How far the cosine of a question to each of fp32's top-k chunks moves on the other path."""
    ref_scores = ref[1] @ ref[0].T
    other_scores = other[1] @ other[0].T
    picked = np.argsort(-ref_scores, axis=1)[:, :k]
    moved = np.abs(np.take_along_axis(other_scores - ref_scores, picked, axis=1))
    return {"score_shift_mean": float(moved.mean()), "score_shift_max": float(moved.max())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limit", type=int, default=400, help="most chunks embedded")
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    embedders = {
        name: make_embedder(EmbeddingSettings(threads=args.threads, **kw))  # type: ignore[arg-type]
        for name, kw in PATHS.items()
    }
    texts = docs_chunks(embedders["int8 dynamic"], args.limit)
    docs: dict[str, np.ndarray] = {}
    queries: dict[str, np.ndarray] = {}
    seconds: dict[str, float] = {}
    for name, embedder in embedders.items():
        embedder.warm_up()
        t = time.perf_counter()
        docs[name] = np.asarray(embedder.embed_documents(texts), dtype=np.float32)
        seconds[name] = time.perf_counter() - t
        queries[name] = np.stack([embedder.embed_query(q) for q in QUESTIONS]).astype(np.float32)

    ref_ranks = top(docs["fp32"], queries["fp32"], args.k)
    rows: list[dict[str, Any]] = []
    for name in ("int8 weights", "int8 dynamic"):
        cos = np.sum(docs[name] * docs["fp32"], axis=1)
        qcos = np.sum(queries[name] * queries["fp32"], axis=1)
        rows.append(
            {
                "path": name,
                "mean_cos": float(cos.mean()),
                "min_cos": float(cos.min()),
                "query_mean_cos": float(qcos.mean()),
                **ranks_compared(ref_ranks, top(docs[name], queries[name], args.k), args.k),
                **score_shift((docs["fp32"], queries["fp32"]), (docs[name], queries[name]), args.k),
                "chunks_per_s": len(texts) / seconds[name],
            }
        )
    # An index built with the dynamic kernels, queried with another machine's vectors (here: fp32's).
    dyn_ranks = top(docs["int8 dynamic"], queries["int8 dynamic"], args.k)
    mixed = ranks_compared(dyn_ranks, top(docs["int8 dynamic"], queries["fp32"], args.k), args.k)
    rows.append({"path": "mixed (dynamic index, fp32 queries) vs dynamic", **mixed})
    between = np.sum(docs["int8 weights"] * docs["int8 dynamic"], axis=1)

    k = args.k
    cols = ["path", "mean_cos", "min_cos", "query_mean_cos", "score_shift_mean", "score_shift_max"]
    cols += [f"overlap@{k}", "same_order", "top1_changed"]
    print(f"{len(texts)} chunks of docs/, {len(QUESTIONS)} questions, k={k}; CPU: {cpu()['model']}")
    # Cosines to four decimals: the differences that matter are in the third.
    shown = [{c: f"{v:.4f}" if c.endswith(("cos", "_mean", "_max")) else v for c, v in r.items()} for r in rows]
    print(table(shown, cols))
    print(f"int8 weights vs int8 dynamic: mean cosine {between.mean():.4f}, min {between.min():.4f}")
    path = write_json(
        "int8_drift",
        {
            "cpu": cpu(),
            "chunks": len(texts),
            "questions": len(QUESTIONS),
            "k": k,
            "rows": rows,
            "weights_vs_dynamic": {"mean_cos": float(between.mean()), "min_cos": float(between.min())},
            "fp32_chunks_per_s": len(texts) / seconds["fp32"],
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
