"""Answer modes side by side: extractive, generative and auto, on the Ray dev questions and the LCEL pages.

    python bench/answers.py                      # Ray dev (first 40 questions for the model modes) + LCEL
    python bench/answers.py --ray-limit 213 --model-limit 213

Each mode answers the same questions from the same index with the default configuration; per mode the table
shows citation validity, the share of answers citing a block, groundedness (embedding support at 0.6, as
``ragline eval answers``), the system's own check, fallbacks, answer relevance (question-answer cosine),
answers that repeat a sentence, words, and p50 seconds to the first token and to the whole answer. The model
modes are slow (seconds per answer), so they run on the first ``--model-limit`` questions; extractive runs on
``--ray-limit``. Writes bench/results/answers.json and the tables into docs/answers.md (between markers).
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

from common import CORPORA, ROOT, need_corpora, table, write_json

from ragline.components import Components
from ragline.config import load_settings
from ragline.evaluate import benchmarks
from ragline.evaluate.answers import EmbeddingSupport, evaluate_answers
from ragline.evaluate.datasets import Question, page_key
from ragline.evaluate.indexing import build_index, index_dir
from ragline.ingest.local import ingest

MODES = ["extractive", "generative", "auto"]
LCEL_QUESTIONS = [
    ("How do I add fallbacks to a runnable?", "with_fallbacks"),
    ("How do I stream output from a chain?", "stream"),
    ("What does RunnablePassthrough do?", "RunnablePassthrough"),
    ("How do I run two chains in parallel?", "RunnableParallel"),
    ("How can I bind tools or kwargs to a model in a chain?", "bind"),
]
COLUMNS = [
    "set",
    "mode",
    "n",
    "citation_validity",
    "cites_any",
    "groundedness",
    "grounded_check",
    "fell_back",
    "relevance",
    "answers_repeating",
    "words",
    "first_token_p50",
    "total_p50",
]
START, END = "<!-- bench/answers.py: start -->", "<!-- bench/answers.py: end -->"


def run_set(
    name: str, comp: Components, questions: list[Question], limits: dict[str, int], modes: list[str]
) -> list[dict[str, Any]]:
    agent = comp.agent
    support = EmbeddingSupport(comp.embedder, 0.6)
    rows = []
    for mode in modes:
        qs = questions[: limits[mode]]
        agent.ask("warm up", mode=mode)
        started = time.perf_counter()
        answers, summary = evaluate_answers(
            qs, lambda q, m=mode: agent.ask(q, mode=m), support, None, key=page_key, embedder=comp.embedder
        )
        print(f"  {name} {mode}: {len(qs)} answers in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        rows.append({"set": name, "mode": mode, "n": len(qs), **summary, "answers": answers})
    return rows


def lcel_found(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Per mode: the share of the five LCEL answers that name the expected API and cite a block."""
    out = {}
    for r in rows:
        if r["set"] != "lcel":
            continue
        hits = 0
        for a, (_q, name) in zip(r["answers"], LCEL_QUESTIONS, strict=True):
            hits += name.lower() in a["answer"].lower() and bool(a["cited"])
        out[r["mode"]] = hits / len(LCEL_QUESTIONS)
    return out


def write_doc(text: str) -> Path:
    doc = ROOT / "docs" / "answers.md"
    current = doc.read_text(encoding="utf-8")
    block = f"{START}\n{text.strip()}\n{END}"
    if START in current:
        current = re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _m: block, current, flags=re.DOTALL)
    else:
        current = current.rstrip() + "\n\n" + block + "\n"
    doc.write_text(current, encoding="utf-8")
    return doc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ray-limit", type=int, default=213, help="Ray dev questions for the extractive mode")
    ap.add_argument("--model-limit", type=int, default=40, help="Ray dev questions for the model modes")
    ap.add_argument("--cache", type=Path, default=Path(os.environ.get("RAGLINE_EVAL_CACHE", "/tmp/ragline-eval")))
    ap.add_argument("--no-doc", action="store_true", help="do not write docs/answers.md")
    ap.add_argument("--modes", default=",".join(MODES), help="modes to run, comma-separated (default: all three)")
    args = ap.parse_args()
    modes = [m for m in args.modes.split(",") if m]
    if not modes or any(m not in MODES for m in modes):
        ap.error(f"--modes takes {', '.join(MODES)}")
    logging.basicConfig(level=logging.ERROR)
    need_corpora("ray-eval")
    lcel_site = need_corpora("langchain-lcel", "site")

    bench = benchmarks.ray(CORPORA)
    settings = load_settings()
    bench.configure(settings)
    settings.data_dir = index_dir(args.cache, bench, settings)
    rows: list[dict[str, Any]] = []
    comp = Components(settings)
    try:
        built = build_index(bench, comp)
        print(f"ray index: {built.chunks} chunks", file=sys.stderr)
        limits = {"extractive": args.ray_limit, "generative": args.model_limit, "auto": args.model_limit}
        rows += run_set("ray-dev", comp, bench.questions.questions, limits, modes)
    finally:
        comp.close()

    lcel = load_settings(data_dir=args.cache / "lcel-site")
    comp = Components(lcel)
    try:
        ingest([lcel_site], comp)
        questions = [Question(f"lcel-{i}", q, {}) for i, (q, _name) in enumerate(LCEL_QUESTIONS, 1)]
        rows += run_set("lcel", comp, questions, dict.fromkeys(MODES, len(questions)), modes)
        llm = comp.generator.name
    finally:
        comp.close()

    found = lcel_found(rows)
    shown = [{k: v for k, v in r.items() if k != "answers"} for r in rows]
    text = "\n".join(
        [
            f"Measured with `python bench/answers.py --ray-limit {args.ray_limit} --model-limit {args.model_limit}` "
            f"(model: {llm}; 2 CPUs).",
            "",
            table(shown, COLUMNS),
            "",
            "LCEL: share of the five answers that name the expected API and cite a block: "
            + ", ".join(f"{m} {v:.1f}" for m, v in found.items()),
        ]
    )
    print(text)
    path = write_json("answers", {"rows": rows, "lcel_found": found, "llm": llm})
    print(f"written: {path}")
    if not args.no_doc:
        print(f"written: {write_doc(text)}")


if __name__ == "__main__":
    main()
