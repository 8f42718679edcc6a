"""Answers per mode and model, scored against reference answers: the Ray dev questions with references.

    python bench/answers.py                                   # extractive, the 0.5B and the 1.5B (both paths)
    python bench/answers.py --systems extractive,qwen-0.5b=auto@local:qwen2.5-coder-0.5b-instruct
    python bench/answers.py --limit 10 --time-limit 600       # a quick look, bounded

A system is ``NAME=MODE[@local:MODEL|@server:MODEL]``: MODE is extractive, auto or generative; ``local`` runs the
model in this process (embedded llama.cpp), ``server`` starts a llama.cpp server on 127.0.0.1 serving it and
answers through the OpenAI-compatible backend (the path of any endpoint a user brings); MODEL is a named model
(``ragline models``) or a GGUF path. Every system answers the same questions from the same index.

Per system the table shows the automatic scores against the references (token F1, key-point recall, wrong and
missed refusals: a guide, not a verdict), how often a model's answer fell back to the extract, and p50 seconds to
the first words (the draft, in auto mode) and to the whole answer. Each system's answers go to
``bench/results/answers/NAME.json`` in the format ``ragline eval answers`` writes, so a blind packet can be
built from them (``../shared/eval/judge.py build``); ``--judged KEY SCORES`` adds the judged means from a scored
packet. Writes ``bench/results/answers.json`` and the table into docs/answers.md (between markers).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import random
import re
import socket
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from common import CORPORA, RESULTS, ROOT, median, need_corpora, table, write_json

from ragline.components import Components
from ragline.config import Settings, load_settings
from ragline.evaluate import benchmarks
from ragline.evaluate.answers import EmbeddingSupport, score_answer, summarise
from ragline.evaluate.datasets import load_answer_questions, page_key
from ragline.evaluate.indexing import build_index, index_dir

DEFAULT_SYSTEMS = (
    "extractive=extractive,"
    "qwen-0.5b=auto@local:qwen2.5-coder-0.5b-instruct,"
    "qwen-1.5b=auto@local:qwen2.5-coder-1.5b-instruct,"
    "qwen-1.5b-server=auto@server:qwen2.5-coder-1.5b-instruct"
)
COLUMNS = [
    "system",
    "n",
    "judged",
    "judged_95",
    "token_f1",
    "key_points",
    "wrong_refusals",
    "missed_refusals",
    "fell_back",
    "first_words_p50",
    "first_token_p50",
    "total_p50",
]
# What a reader sees above each column (counts of refusals, fell back as a share of the answers, seconds).
HEADERS = {
    "judged_95": "judged 95%",
    "token_f1": "token F1",
    "key_points": "key points",
    "wrong_refusals": "wrong refusals",
    "missed_refusals": "missed refusals",
    "fell_back": "fell back (share)",
    "first_words_p50": "first words p50 s",
    "first_token_p50": "first token p50 s",
    "total_p50": "whole answer p50 s",
}
START, END = "<!-- bench/answers.py: start -->", "<!-- bench/answers.py: end -->"


def parse_system(spec: str) -> dict[str, str]:
    name, _, rest = spec.partition("=")
    mode, _, where = (rest or name).partition("@")
    kind, _, model = where.partition(":")
    if mode not in ("extractive", "auto", "generative") or kind not in ("", "local", "server"):
        raise SystemExit(f"--systems: cannot read {spec!r} (NAME=MODE[@local:MODEL|@server:MODEL])")
    return {"name": name, "mode": mode, "kind": kind, "model": model}


def gguf(model: str) -> Path:
    """A named model's assembled GGUF (checked), or a path given as it is."""
    from ragline.generate import models

    if models.find(model) is not None:
        return models.resolve(model)
    path = Path(model).expanduser()
    if not path.is_file():
        raise SystemExit(f"{model}: neither a named model nor a GGUF file")
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def llama_server(path: Path, alias: str, context: int, threads: int) -> Iterator[str]:
    """A llama.cpp server on 127.0.0.1 serving ``path``; its base URL while the block runs, stopped after."""
    import httpx

    port = _free_port()
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(path), "--model_alias", alias]
    cmd += ["--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(context), "--n_threads", str(threads)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise SystemExit(f"the llama.cpp server exited ({proc.returncode})")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                    break
            time.sleep(0.5)
        else:
            raise SystemExit("the llama.cpp server did not come up in 120 s")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def configure(base: Settings, system: dict[str, str], server_url: str | None) -> Settings:
    settings = base.model_copy(deep=True)
    settings.answer.mode = system["mode"]  # type: ignore[assignment]
    if system["kind"] == "local":
        settings.llm.model_path = str(gguf(system["model"]))
    elif system["kind"] == "server":
        settings.llm.backend = "openai"
        settings.llm.base_url = server_url
        settings.llm.model = system["name"]
    return settings


def run_system(
    system: dict[str, str], base: Settings, questions: list[Any], time_limit: float, out: Path
) -> dict[str, Any]:
    with contextlib.ExitStack() as stack:
        url = None
        if system["kind"] == "server":
            threads = base.llm.threads or os.cpu_count() or 2
            url = stack.enter_context(llama_server(gguf(system["model"]), system["name"], 4096, threads))
        comp = Components(configure(base, system, url))
        stack.callback(comp.close)
        comp.open_for_reading()
        agent = comp.agent
        agent.ask("warm up", mode=system["mode"])  # the model's load time is not an answer's
        support = EmbeddingSupport(comp.embedder, 0.6)
        rows: list[dict[str, Any]] = []
        started = time.perf_counter()
        for q in questions:
            if time.perf_counter() - started > time_limit:
                print(f"  {system['name']}: time limit reached after {len(rows)} answers", file=sys.stderr)
                break
            answer = agent.ask(q.text, mode=system["mode"], draft=None)  # a draft as a streaming client gets
            row = {"asked_mode": system["mode"], **score_answer(q, answer, support, None, key=page_key)}
            row["llm"] = answer.llm
            rows.append(row)
            out.write_text(json.dumps({"system": system, "llm": comp.generator.name, "answers": rows}, indent=1))
            print(f"  {system['name']} {len(rows)}/{len(questions)}: {row['seconds']:.1f} s", file=sys.stderr)
        summary = summarise(rows) if rows else {}
        summary["fell_back"] = summary.get("fell_back", 0.0)
        return {"system": system["name"], "spec": system, "n": len(rows), "llm": comp.generator.name, **summary}


def judged(key_path: Path, scores_path: Path) -> dict[str, dict[str, Any]]:
    """Per system of a scored blind packet: the mean, its 95% bootstrap interval and the scores by question."""
    key = json.loads(key_path.read_text())
    scores = {}
    for line in scores_path.read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            scores[row["label"]] = float(row["score"])
    by: dict[str, list[float]] = defaultdict(list)
    for label, system in key.items():
        if label in scores:
            by[system].append(scores[label])
    rng = random.Random(0)
    out = {}
    for system, values in by.items():
        means = sorted(sum(rng.choice(values) for _ in values) / len(values) for _ in range(2000))
        out[system] = {
            "judged": round(sum(values) / len(values), 2),
            "judged_95": f"{means[50]:.2f}-{means[1949]:.2f}",
            "judged_n": len(values),
        }
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
    ap.add_argument("--systems", default=DEFAULT_SYSTEMS, help="NAME=MODE[@local:MODEL|@server:MODEL], comma-separated")
    ap.add_argument("--limit", type=int, default=None, help="only the first N questions")
    ap.add_argument("--time-limit", type=float, default=3600.0, help="seconds per system before it stops asking")
    ap.add_argument("--cache", type=Path, default=Path(os.environ.get("RAGLINE_EVAL_CACHE", "/tmp/ragline-eval")))
    ap.add_argument("--judged", nargs=2, type=Path, metavar=("KEY", "SCORES"), help="a scored blind packet")
    ap.add_argument("--table-only", action="store_true", help="tabulate the answers already written")
    ap.add_argument("--no-doc", action="store_true", help="do not write docs/answers.md")
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)
    refs = need_corpora("ray-eval", "answers-dev.jsonl")
    systems = [parse_system(s) for s in args.systems.split(",") if s]
    out_dir = RESULTS / "answers"
    out_dir.mkdir(parents=True, exist_ok=True)
    questions = load_answer_questions(refs)[: args.limit]

    rows: list[dict[str, Any]] = []
    if not args.table_only:
        bench = benchmarks.ray(CORPORA)
        settings = load_settings()
        bench.configure(settings)
        settings.data_dir = index_dir(args.cache, bench, settings)
        comp = Components(settings)
        try:
            print(f"ray index: {build_index(bench, comp).index_chunks} chunks", file=sys.stderr)
        finally:
            comp.close()
        for system in systems:
            rows.append(run_system(system, settings, questions, args.time_limit, out_dir / f"{system['name']}.json"))
    else:
        for system in systems:
            data = json.loads((out_dir / f"{system['name']}.json").read_text())
            answers = data["answers"]
            rows.append({"system": system["name"], "spec": system, "n": len(answers), "llm": data["llm"]})
            rows[-1].update(summarise(answers))
    for r in rows:
        answers = json.loads((out_dir / f"{r['system']}.json").read_text())["answers"]
        for count in ("wrong_refusals", "missed_refusals"):
            if isinstance(r.get(count), float):
                r[count] = int(r[count])
        firsts = [a.get("first_words", a["first_token"]) for a in answers]
        r["first_words_p50"] = round(median(firsts), 2) if answers else None
        r["first_token_p50"] = round(median([a["first_token"] for a in answers]), 2) if answers else None
        r["total_p50"] = round(median([a["seconds"] for a in answers]), 2) if answers else None
    if args.judged:
        marks = judged(*args.judged)
        for r in rows:
            r.update(marks.get(r["system"], {}))
    text = "\n".join(
        [
            f"Measured with `python bench/answers.py --systems {args.systems}"
            + (f" --limit {args.limit}" if args.limit else "")
            + "` on the Ray dev questions with reference answers (2 CPUs).",
            "",
            table(rows, [c for c in COLUMNS if any(c in r for r in rows)], HEADERS),
        ]
    )
    print(text)
    print(f"written: {write_json('answers', {'rows': rows})}")
    if not args.no_doc:
        print(f"written: {write_doc(text)}")


if __name__ == "__main__":
    main()
