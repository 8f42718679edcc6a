"""Where the time to an answer's first words goes, with the bundled model in-process: retrieval, the model's
reading of the prompt (prompt evaluation), and the first sentence, in each answer mode.

    .venv/bin/python bench/first_token.py [--questions 20] [--blocks 4,2] [--attention flash,plain] [--data-dir DIR]

The index is ``../shared/corpora/ray-docs`` (built once into --data-dir, as bench/serve.py builds it); the
questions are the first --questions of the Ray dev set. The model is loaded before anything is timed (its load
time is reported apart). Each question is answered, in turn, in every (mode, evidence blocks) setting of the run,
so the machine's drift hits every setting alike. In the "cold" settings the model's cache of the previous prompt
is cleared before each answer, so every prompt is read whole. In the "kept" settings (generative only) the cache
holds the previous question's prompt of the same setting, as in a server answering one question after another:
llama.cpp then reads only what follows the common start (the system prompt and the context fence). The model
settings in --attention (flash: flash attention, the default; plain: without it) are two copies of the model,
loaded side by side, each answering every question in every generative setting. Per answer:

  retrieve        the question's search (the agent's own timing)
  first model     until the model's first streamed piece: retrieval, building the prompt, prompt evaluation
  first event     until the first Token the answer stream yields (what a client sees first)
  prompt tokens   what the model read

With --served, the same questions are then asked of `ragline serve` (Ray Serve on 127.0.0.1, as bench/serve.py
starts it) as streamed ``POST /query`` requests, one at a time, in each mode: the time to the first ``token``
event the client reads beside the server's own timings from the ``done`` event (retrieve, first_token, total).
The served model keeps its cache between requests, as a server does (the "kept" rows are its in-process match).

Prints a table of p50s and writes bench/results/first-token.json.
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import median, need_corpora, table, write_json
from serve import bench_settings, ray_docs_index, ray_serve

from ragline.agent import Agent
from ragline.components import Components
from ragline.generate import make_generator
from ragline.generate.base import Generator
from ragline.ray_local import free_port
from ragline.records import Query, Token

Setting = tuple[str, int, str, str]  # mode, evidence blocks, prompt cache, attention


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


def streamed(connection: http.client.HTTPConnection, body: dict[str, Any]) -> tuple[float | None, float, dict]:
    """One streamed POST /query: (seconds to the first non-empty token event, seconds in all, the done event)."""
    t0 = time.perf_counter()
    connection.request("POST", "/query", body=json.dumps(body).encode(), headers={"content-type": "application/json"})
    response = connection.getresponse()
    if response.status != 200:
        raise RuntimeError(f"POST /query: {response.status} {response.read()[:200]!r}")
    first, done, name = None, None, None
    while line := response.readline():
        text = line.decode().rstrip("\n")
        if text.startswith("event: "):
            name = text.removeprefix("event: ")
        elif text.startswith("data: "):
            data = json.loads(text.removeprefix("data: "))
            if name == "token" and first is None and data["text"].strip():
                first = time.perf_counter() - t0
            elif name == "done":
                done = data
            elif name == "error":
                raise RuntimeError(f"POST /query: {data}")
    if done is None:
        raise RuntimeError("POST /query: the stream ended without a done event")
    return first, time.perf_counter() - t0, done


def served_rows(docs_dir: Path, args: argparse.Namespace, questions: list[str]) -> list[dict[str, Any]]:
    """Each question asked of Ray Serve, streamed, in each mode, one request at a time."""
    settings = bench_settings(docs_dir, args)
    seen: dict[str, dict[str, list[float]]] = {"extractive": {}, "generative": {}}
    with ray_serve(settings) as url:
        parts = urlsplit(url)
        connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=600)
        try:
            for mode in seen:  # warm: the replicas' first search and first prompt evaluation
                streamed(connection, {"query": questions[0], "stream": True, "mode": mode, "max_tokens": 8})
            for q in questions:
                for mode, row in seen.items():
                    body = {"query": q, "stream": True, "mode": mode, "max_tokens": args.max_tokens}
                    first, total, done = streamed(connection, body)
                    timings = done["timings"]
                    row.setdefault("retrieve ms", []).append(timings["retrieve"] * 1000)
                    if mode != "extractive" and "first_token" in timings:
                        row.setdefault("server first token s", []).append(timings["first_token"])
                    row.setdefault("first event s", []).append(first if first is not None else total)
                    row.setdefault("total s", []).append(total)
                    row.setdefault("prompt tokens", []).append(float(done["usage"]["prompt_tokens"]))
        finally:
            connection.close()
    return [
        {
            "mode": mode,
            "blocks": settings.answer.evidence_blocks,
            "prompt cache": "server" if mode == "generative" else "",
            "attention": "flash" if mode == "generative" else "",
            "path": "http+ray",
            "n": len(questions),
            **{name: round(median(v), 3) for name, v in values.items()},
        }
        for mode, values in seen.items()
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--questions", type=int, default=20)
    ap.add_argument("--blocks", default="4,2", help="evidence blocks to compare (answer.evidence_blocks)")
    ap.add_argument("--max-tokens", type=int, default=96)
    ap.add_argument("--attention", default="flash,plain", help="llama.cpp attention settings to compare")
    ap.add_argument("--threads", type=int, default=1, help="embedder threads")
    ap.add_argument("--served", action="store_true", help="then ask Ray Serve the same questions, streamed")
    ap.add_argument("--data-dir", type=Path, default=Path(tempfile.gettempdir()) / "ragline-bench-serve")
    args = ap.parse_args()
    args.port, args.retriever_replicas = free_port(), 1  # what bench_settings reads
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
    models: dict[str, FirstPiece] = {}
    load_s: dict[str, float] = {}
    for attention in args.attention.split(","):
        llm = comp.settings.llm.model_copy(update={"flash_attn": attention == "flash"})
        generator = make_generator(llm)
        started = time.perf_counter()
        generator.warm_up()
        load_s[attention] = time.perf_counter() - started
        models[attention] = FirstPiece(generator)
    first_model = next(iter(models.values()))
    agents: dict[Setting, tuple[Agent, FirstPiece]] = {}
    for blocks in (int(b) for b in args.blocks.split(",")):
        shaped = comp.settings.answer.model_copy(update={"evidence_blocks": blocks})
        agent = Agent(comp.retriever, first_model, comp.settings.llm, shaped, comp.embedder)
        agents[("extractive", blocks, "", "")] = (agent, first_model)
        for attention, model in models.items():
            for cache in ("cold", "kept"):
                agent = Agent(comp.retriever, model, comp.settings.llm, shaped, comp.embedder)
                agents[("generative", blocks, cache, attention)] = (agent, model)
    for agent, _ in agents.values():  # warm: the first prompt evaluation and the checker's model
        list(agent.stream(Query.of(questions[0], mode="extractive")))
    for attention in models:  # and each model's first generation
        agent = agents[("generative", int(args.blocks.split(",")[0]), "cold", attention)][0]
        list(agent.stream(Query.of(questions[0], mode="generative", max_tokens=8)))
    seen: dict[Setting, dict[str, list[float]]] = {key: {} for key in agents}
    for i, q in enumerate(questions):
        for (mode, blocks, cache, attention), (agent, model) in agents.items():
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
            row = seen[(mode, blocks, cache, attention)]
            row.setdefault("retrieve ms", []).append(answer.timings["retrieve"] * 1000)
            if model.first is not None and mode != "extractive":
                row.setdefault("first model s", []).append(model.first - t0)
            row.setdefault("first event s", []).append(first_event if first_event is not None else total)
            row.setdefault("total s", []).append(total)
            row.setdefault("prompt tokens", []).append(float(answer.usage.prompt_tokens))
    comp.close()
    rows = []
    for (mode, blocks, cache, attention), values in seen.items():
        rows.append(
            {
                "mode": mode,
                "blocks": blocks,
                "prompt cache": cache,
                "attention": attention,
                "path": "in-process",
                "n": len(questions),
                **{name: round(median(v), 3) for name, v in values.items()},
            }
        )
    if args.served:
        del models, agents, first_model  # the served replicas load their own model
        rows += served_rows(docs_dir, args, questions)
    columns = ["path", "mode", "blocks", "prompt cache", "attention", "n", "retrieve ms", "first model s"]
    columns += ["server first token s", "first event s", "total s", "prompt tokens"]
    for r in rows:
        for c in columns:
            r.setdefault(c, "")
    loads = ", ".join(f"{k} {v:.2f} s" for k, v in load_s.items())
    print(f"\nthe bundled model loaded before timing ({loads})")
    print(table(rows, columns))
    print(
        "written",
        write_json("first-token", {"args": {k: str(v) for k, v in vars(args).items()}, "load_s": load_s, "rows": rows}),
    )


if __name__ == "__main__":
    main()
