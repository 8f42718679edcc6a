"""Where the time to an answer's first words goes, with the bundled model in-process: retrieval, the model's
reading of the prompt (prompt evaluation), and the first sentence, in each answer mode.

    .venv/bin/python bench/first_token.py [--questions 20] [--blocks 4,2] [--data-dir DIR]

The index is ``../shared/corpora/ray-docs`` (built once into --data-dir, as bench/serve.py builds it); the
questions are the first --questions of the Ray dev set. The model is loaded before anything is timed (its load
time is reported apart). Each question is answered, in turn, in every (mode, evidence blocks) setting of the run,
so the machine's drift hits every setting alike. In the "cold" settings the model's cache of the previous prompt
is cleared before each answer, so every prompt is read whole. In the "kept" settings (generative only) the cache
holds the previous question's prompt of the same setting, as in a server answering one question after another:
llama.cpp then reads only what follows the common start (the system prompt and the context fence). Per answer:

  retrieve        the question's search (the agent's own timing)
  first model     until the model's first streamed piece: retrieval, building the prompt, prompt evaluation
  first event     until the first Token the answer stream yields (what a client sees first)
  prompt tokens   what the model read

Prints a table of p50s and writes bench/results/first-token.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import median, need_corpora, table, write_json
from serve import bench_settings, ray_docs_index

from ragline.agent import Agent, Query, Token
from ragline.components import Components
from ragline.generate.base import Generator


class FirstPiece:
    """Wraps the generator's stream to note when the model's first piece of text arrives."""

    def __init__(self, generator: Generator) -> None:
        self.generator = generator
        self.first: float | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.generator, name)

    def stream(self, messages: Any, **kw: Any) -> Any:
        for delta in self.generator.stream(messages, **kw):
            if self.first is None and delta.text:
                self.first = time.perf_counter()
            yield delta


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--questions", type=int, default=20)
    ap.add_argument("--blocks", default="4,2", help="evidence blocks to compare (answer.evidence_blocks)")
    ap.add_argument("--max-tokens", type=int, default=96)
    ap.add_argument("--threads", type=int, default=1, help="embedder threads")
    ap.add_argument("--data-dir", type=Path, default=Path(tempfile.gettempdir()) / "ragline-bench-serve")
    args = ap.parse_args()
    args.port, args.retriever_replicas = 0, 1  # what bench_settings reads
    questions = [
        json.loads(line)["question"]
        for line in need_corpora("ray-eval", "questions-dev.jsonl").read_text().splitlines()
        if line.strip()
    ][: args.questions]
    docs_dir = args.data_dir / "ray-docs"
    ray_docs_index(docs_dir, args)
    comp = Components(bench_settings(docs_dir, args))
    comp.open_for_reading()
    comp.retriever.warm_up()
    started = time.perf_counter()
    comp.generator.warm_up()
    load_s = time.perf_counter() - started
    model = FirstPiece(comp.generator)
    agents: dict[tuple[str, int, str], Agent] = {}
    for mode, cache in (("extractive", ""), ("generative", "cold"), ("generative", "kept")):
        for blocks in (int(b) for b in args.blocks.split(",")):
            shaped = comp.settings.answer.model_copy(update={"evidence_blocks": blocks})
            agents[(mode, blocks, cache)] = Agent(comp.retriever, model, comp.settings.llm, shaped, comp.embedder)
    for agent in agents.values():  # warm: the first prompt evaluation and the checker's model
        list(agent.stream(Query.of(questions[0], mode="extractive")))
    seen: dict[tuple[str, int, str], dict[str, list[float]]] = {key: {} for key in agents}
    for i, q in enumerate(questions):
        for (mode, blocks, cache), agent in agents.items():
            # llama.cpp keeps the last prompt's tokens and evaluates only what differs: without a reset, a
            # setting asked right after another one on the same question would read most of its prompt free.
            model.generator.llm.reset()  # type: ignore[attr-defined]
            if cache == "kept":  # the previous question's prompt in the cache, read untimed
                list(agent.stream(Query.of(questions[i - 1], mode=mode, max_tokens=1)))
            model.first = None
            t0 = time.perf_counter()
            first_event = None
            answer = None
            for event in agent.stream(Query.of(q, mode=mode, max_tokens=args.max_tokens)):
                if isinstance(event, Token) and first_event is None and event.text.strip():
                    first_event = time.perf_counter() - t0
                answer = getattr(event, "answer", answer)
            total = time.perf_counter() - t0
            assert answer is not None
            row = seen[(mode, blocks, cache)]
            row.setdefault("retrieve ms", []).append(answer.timings["retrieve"] * 1000)
            if model.first is not None:
                row.setdefault("first model s", []).append(model.first - t0)
            row.setdefault("first event s", []).append(first_event if first_event is not None else total)
            row.setdefault("total s", []).append(total)
            row.setdefault("prompt tokens", []).append(float(answer.usage.prompt_tokens))
    comp.close()
    rows = []
    for (mode, blocks, cache), values in seen.items():
        rows.append(
            {
                "mode": mode,
                "blocks": blocks,
                "prompt cache": cache,
                "n": len(questions),
                **{name: round(median(v), 3) for name, v in values.items()},
            }
        )
    columns = ["mode", "blocks", "prompt cache", "n", "retrieve ms", "first model s", "first event s", "total s"]
    columns.append("prompt tokens")
    for r in rows:
        for c in columns:
            r.setdefault(c, "")
    print(f"\nmodel loaded in {load_s:.2f} s (before timing); bundled {comp.generator.name}")
    print(table(rows, columns))
    print(
        "written",
        write_json("first-token", {"args": {k: str(v) for k, v in vars(args).items()}, "load_s": load_s, "rows": rows}),
    )


if __name__ == "__main__":
    main()
