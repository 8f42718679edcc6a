"""Ingest throughput, side by side in one process: (a) a tutorial-style baseline, (b) the in-process engine,
(c) the Ray engine and (d) the model-only bound, on the Ray docs as HTML pages and as sources, with each
variant's retrieval hit rate (top-5) on the dev questions next to its speed.

    .venv/bin/python bench/ingest.py [--corpus ray-html-2023-06 --corpus ray-docs] [--limit-docs N]
        [--questions N] [--backend onnx|sentence-transformers] [--embed-actors 1]
        [--variants a,b,c,d,d',d'32,d'c,e,b-w,b-st] [--rounds N]

(a) per document: BeautifulSoup ``html.parser``, LangChain ``RecursiveCharacterTextSplitter(512, 50)``,
``SentenceTransformer.encode`` of that document's chunks, one upsert per document (qdrant-client, on disk).
(d) the chunks of (b) embedded by one ``SentenceTransformer.encode`` call; (d') the same by (b)'s embedder,
configured as (b) runs it (ONNX: one-thread calls, one per core, one text per forward pass); (d'32) is (d')
with forward passes of 32 texts sorted by token count, as the embedder ran before, and (d'c) with passes of 32
sorted by characters, as it ran before that; (b-w) is (b) on the shipped ONNX file as it
is (int8-stored weights, float products) instead of the dynamically quantized one; (b-st) is (b) on
sentence-transformers; (e) is ``ragline ingest FOLDER --json`` as a user runs it, in a fresh process (its
start-up and model load on the clock), with (b)'s settings.
All use all-MiniLM-L6-v2. Models load before the clock starts, except in (c), whose actors load their own.
``--limit-docs N`` keeps the first N files, pages that questions ask about first. The machine is shared, so
ratios of variants measured in one run mean more than absolute rates (``--rounds 3`` runs the variants in
turn three times and keeps each one's median round); ``cpu_s`` (the process tree's CPU time) is less
sensitive to other people's load than wall time. Prints tables; writes bench/results/ingest.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np
from common import need_corpora, table, write_json

from ragline.components import Components
from ragline.config import load_settings
from ragline.embed.models import bundled_minilm_dir
from ragline.ingest import local, ray_engine
from ragline.ingest.local import read_sources
from ragline.ingest.parallel import ingest_embedder
from ragline.ray_local import start_local_ray, stop_local_ray
from ragline.sources.files import iter_files

K = 5
RAY_DOCS_URLS = "https://docs.ray.io/en/master/{path_noext}.html"
Search = Callable[[str], list[str]]  # question -> relpaths of the top-K chunks' files


# --- measuring ------------------------------------------------------------------------------------


def _tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def _pss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _cpu_s(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Meter:
    """Wall time, CPU time and peak memory (PSS) of this process and every process it started."""

    seconds: float = 0.0
    cpu_s: float = 0.0
    peak_mb: float = 0.0
    start_mb: float = 0.0
    _stop: threading.Event = field(default_factory=threading.Event)

    @contextmanager
    def run(self) -> Iterator[Meter]:
        me = os.getpid()
        start_cpu = {p: _cpu_s(p) for p in _tree(me)}
        self.start_mb = sum(_pss_mb(p) for p in _tree(me))
        last_cpu: dict[int, float] = dict(start_cpu)

        def sample() -> None:
            while True:
                pids = _tree(me)
                self.peak_mb = max(self.peak_mb, sum(_pss_mb(p) for p in pids))
                for p in pids:
                    last_cpu[p] = max(last_cpu.get(p, 0.0), _cpu_s(p))
                if self._stop.wait(0.5):
                    return

        thread = threading.Thread(target=sample, daemon=True)
        t0 = time.perf_counter()
        thread.start()
        try:
            yield self
        finally:
            self.seconds = time.perf_counter() - t0
            self._stop.set()
            thread.join()
            for p in _tree(me):
                last_cpu[p] = max(last_cpu.get(p, 0.0), _cpu_s(p))
            self.cpu_s = sum(v - start_cpu.get(p, 0.0) for p, v in last_cpu.items())


# --- corpora and questions ------------------------------------------------------------------------


@dataclass
class Corpus:
    name: str
    root: Path
    url_template: str | None
    files: list[str]  # relpaths under root, in ingest order
    questions: list[tuple[str, str]]  # (question, relpath of the page that answers it)


def load_corpus(name: str, limit: int, max_questions: int) -> Corpus:
    root = need_corpora(name)
    mapping = {}
    for line in need_corpora("ray-eval", "url_to_doc_source.jsonl").read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            mapping[row["url"]] = row
    all_files = [f.relpath for f in iter_files([root])]
    questions = []
    for line in need_corpora("ray-eval", "questions-dev.jsonl").read_text().splitlines():
        if not line.strip():
            continue
        q = json.loads(line)
        row = mapping.get(q["source"].split("#", 1)[0])
        if row is None:
            continue
        if name == "ray-docs":
            target = row["doc_source_path"] if row["kind"] == "source" else None
        else:
            target = row["html_2023_06"].split("/", 1)[1] if row["html_2023_06"] else None
        if target:
            questions.append((q["question"], target))
    if limit:
        # Pages the questions ask about first, so a small run still scores questions; then the rest in order.
        wanted = {t for _, t in questions}
        ordered = [f for f in all_files if f in wanted] + [f for f in all_files if f not in wanted]
        chosen = set(ordered[:limit])
        files = [f for f in all_files if f in chosen]
    else:
        files = all_files
    present = set(files)
    questions = [(q, t) for q, t in questions if t in present][: max_questions or None]
    return Corpus(name, root, RAY_DOCS_URLS if name == "ray-docs" else None, files, questions)


def materialise(corpus: Corpus, dst: Path) -> Path:
    """A folder holding exactly the chosen files (symlinks) at their relative paths."""
    if len(corpus.files) == len(list(iter_files([corpus.root]))):
        return corpus.root
    for rel in corpus.files:
        link = dst / rel
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(corpus.root / rel)
    return dst


def hit_rate(search: Search, questions: list[tuple[str, str]]) -> float:
    if not questions:
        return float("nan")
    return sum(target in search(q) for q, target in questions) / len(questions)


# --- variants -------------------------------------------------------------------------------------


def settings_for(corpus: Corpus, data_dir: Path, backend: str, quantization: str = "", **ingest: Any) -> Components:
    s = load_settings(data_dir=data_dir)
    s.embedding.backend = backend  # type: ignore[assignment]
    if quantization:
        s.embedding.onnx_quantization = quantization  # type: ignore[assignment]
    s.parse.url_template = corpus.url_template
    for k, v in ingest.items():
        setattr(s.ingest, k, v)
    return Components(s)


def store_search(comp: Components) -> Search:
    def search(q: str) -> list[str]:
        hits = comp.store.search(comp.embedder.embed_query(q), K)
        return [str(h.chunk.metadata.get("path")) for h in hits]

    return search


def run_baseline(folder: Path, files: list[str], st: Any, work: Path) -> tuple[dict[str, Any], Search]:
    """(a) the tutorial way: one document at a time, end to end."""
    from bs4 import BeautifulSoup
    from langchain_text_splitters import RecursiveCharacterTextSplitter
    from qdrant_client import QdrantClient, models

    client = QdrantClient(path=str(work / "baseline-qdrant"))
    client.create_collection("docs", vectors_config=models.VectorParams(size=384, distance=models.Distance.COSINE))
    splitter = RecursiveCharacterTextSplitter(chunk_size=512, chunk_overlap=50)
    chunks_total = 0
    meter = Meter()
    with meter.run():
        for rel in files:
            raw = (folder / rel).read_text(encoding="utf-8", errors="ignore")
            text = BeautifulSoup(raw, "html.parser").get_text()
            chunks = splitter.split_text(text)
            if not chunks:
                continue
            vectors = st.encode(chunks)
            client.upsert(
                "docs",
                points=[
                    models.PointStruct(id=chunks_total + i, vector=v.tolist(), payload={"path": rel, "text": c})
                    for i, (c, v) in enumerate(zip(chunks, vectors, strict=True))
                ],
            )
            chunks_total += len(chunks)

    def search(q: str) -> list[str]:
        found = client.query_points("docs", query=st.encode(q).tolist(), limit=K).points
        return [str((p.payload or {}).get("path")) for p in found]

    return _row(meter, len(files), chunks_total), search


def run_engine(folder: Path, files: list[str], comp: Components, ray: bool) -> tuple[dict[str, Any], Search]:
    """(b) / (c): a full ingest into a fresh index."""
    meter = Meter()
    with meter.run():
        report = (ray_engine if ray else local).ingest([folder], comp)
    row = _row(meter, len(files), report.chunks_written)
    row["skipped"] = len(report.skipped)
    return row, store_search(comp)


def run_command(
    folder: Path, files: list[str], corpus: Corpus, backend: str, work: Path
) -> tuple[dict[str, Any], Search]:
    """(e) the command a user runs, ``ragline ingest FOLDER --json``, in a fresh process: start-up, model load,
    quantized-model cache and all, with the settings (b) runs with."""
    data = work / "e"
    env = {**os.environ, "RAGLINE_EMBEDDING__BACKEND": backend}
    if corpus.url_template:
        env["RAGLINE_PARSE__URL_TEMPLATE"] = corpus.url_template
    cmd = [sys.executable, "-m", "ragline.cli", "-q", "ingest", str(folder), "--json", "--data-dir", str(data)]
    meter = Meter()
    with meter.run():
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=3600)
    if done.returncode != 0:
        raise SystemExit(f"(e) failed: {done.stderr[-2000:]}")
    report = json.loads(done.stdout)
    row = _row(meter, len(files), report["chunks_written"])
    row["skipped"] = len(report["skipped"])
    comp = settings_for(corpus, data, backend)
    comp.open_for_reading()
    return row, store_search(comp)


def bound_chunks(folder: Path, comp: Components) -> tuple[list[str], list[str]]:
    """(b)'s chunks (embedding text, file) without embedding them, as the in-process engine makes them."""
    _, loaded = read_sources([folder], comp)
    texts, paths, seen = [], [], set()
    for item in loaded:
        doc = item.document
        if doc is None or doc.doc_id in seen:
            continue
        seen.add(doc.doc_id)
        for c in comp.chunker.split(doc, origin=doc.metadata.pop("origin", None)):
            texts.append(c.embedding_text())
            paths.append(str(doc.metadata.get("path")))
    return texts, paths


def run_bound(
    texts: list[str], paths: list[str], n_files: int, encode: Callable[[list[str]], np.ndarray], query: Callable
) -> tuple[dict[str, Any], Search]:
    """(d): the chunks embedded by one tight call; retrieval by brute force over its vectors."""
    meter = Meter()
    with meter.run():
        vectors = np.asarray(encode(texts), dtype=np.float32)
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)

    def search(q: str) -> list[str]:
        v = np.asarray(query(q), dtype=np.float32)
        top = np.argsort(-(vectors @ (v / max(float(np.linalg.norm(v)), 1e-12))))[:K]
        return [paths[i] for i in top]

    return _row(meter, n_files, len(texts)), search


def _row(meter: Meter, docs: int, chunks: int) -> dict[str, Any]:
    return {
        "docs": docs,
        "chunks": chunks,
        "seconds": meter.seconds,
        "docs_per_s": docs / meter.seconds,
        "chunks_per_s": chunks / meter.seconds,
        "cpu_s": meter.cpu_s,
        "peak_mem_mb": meter.peak_mb,
        "mem_added_mb": meter.peak_mb - meter.start_mb,
    }


# --- main -----------------------------------------------------------------------------------------


def bench_corpus(corpus: Corpus, args: argparse.Namespace, st: Any, work: Path) -> dict[str, Any]:
    folder = materialise(corpus, work / "docs")
    runs: dict[str, list[dict[str, Any]]] = {}
    searches: dict[str, Search] = {}
    comps: list[Components] = []
    for round_ in range(1, args.rounds + 1):
        if args.rounds > 1:
            print(f"  round {round_} of {args.rounds}", flush=True)
        run_variants(folder, corpus, args, st, work / f"round-{round_}", runs, searches, comps)
    # Each variant's median round (by wall time), with every round's seconds beside it.
    rows: dict[str, dict[str, Any]] = {}
    for name, rounds in runs.items():
        rows[name] = sorted(rounds, key=lambda r: r["seconds"])[(len(rounds) - 1) // 2]
        if len(rounds) > 1:
            rows[name] = {**rows[name], "rounds_s": [round(r["seconds"], 1) for r in rounds]}
    for name, search in searches.items():
        rows[name]["hit_rate"] = hit_rate(search, corpus.questions)
    for comp in comps:
        comp.close()
    return {"files": len(corpus.files), "questions": len(corpus.questions), "variants": rows, "ratios": ratios_of(rows)}


def run_variants(
    folder: Path,
    corpus: Corpus,
    args: argparse.Namespace,
    st: Any,
    work: Path,
    runs: dict[str, list[dict[str, Any]]],
    searches: dict[str, Search],
    comps: list[Components],
) -> None:
    """One round of the chosen variants, in the order a, d, d', b, b-w, b-st, e, c."""
    work.mkdir(parents=True)
    backend = args.backend

    def record(name: str, result: tuple[dict[str, Any], Search]) -> None:
        row, searches[name] = result
        runs.setdefault(name, []).append(row)
        print(f"  {name}: {row['seconds']:.1f}s", flush=True)

    if "a" in args.variants:
        record("a baseline (bs4 + langchain + st, per doc)", run_baseline(folder, corpus.files, st, work))
    if args.variants & {"d", "d'", "d'32", "d'c"}:
        probe = settings_for(corpus, work / "probe", backend)
        texts, paths = bound_chunks(folder, probe)
        if "d" in args.variants:
            record(
                "d bound (one st.encode)",
                run_bound(texts, paths, len(corpus.files), lambda t: st.encode(t, batch_size=32), st.encode),
            )
        if backend != "sentence-transformers" and args.variants & {"d", "d'"}:  # (b)'s runtime, as (b) runs it
            e, _ = ingest_embedder(probe.settings.embedding, probe.settings.ingest.embed_workers)
            e.warm_up()
            record(
                f"d' bound (one {backend} call, as b embeds)",
                run_bound(texts, paths, len(corpus.files), e.embed_documents, e.embed_query),
            )
        if backend != "sentence-transformers" and args.variants & {"d'32", "d'c"}:  # passes of 32 texts
            batched = probe.settings.embedding.model_copy(update={"batch_size": 32})
            for name in ("d'32", "d'c"):
                if name not in args.variants:
                    continue
                e, _ = ingest_embedder(batched, probe.settings.ingest.embed_workers)
                e.warm_up()
                if name == "d'c":  # how batches were filled before they were sorted by token count
                    inner: Any = getattr(e, "inner", e)
                    inner._sort_lengths = lambda texts: [len(t) for t in texts]
                label = "batches of 32 sorted by characters" if name == "d'c" else "batches of 32 by token count"
                record(
                    f"{name} bound (as d', {label})",
                    run_bound(texts, paths, len(corpus.files), e.embed_documents, e.embed_query),
                )
    if "b" in args.variants:
        comp = settings_for(corpus, work / "b", backend)
        comp.embedder.warm_up()
        comps.append(comp)
        record(f"b in-process ({backend})", run_engine(folder, corpus.files, comp, ray=False))
    if "b-w" in args.variants and backend == "onnx":  # the shipped ONNX file as it is: int8 storage, float math
        comp = settings_for(corpus, work / "b-w", backend, quantization="weights")
        comp.embedder.warm_up()
        comps.append(comp)
        record("b-w in-process (onnx, shipped file)", run_engine(folder, corpus.files, comp, ray=False))
    if "b-st" in args.variants and backend != "sentence-transformers":  # the engine alone, without ONNX
        comp = settings_for(corpus, work / "b-st", "sentence-transformers")
        comp.embedder.warm_up()
        comps.append(comp)
        record("b-st in-process (sentence-transformers)", run_engine(folder, corpus.files, comp, ray=False))
    if "e" in args.variants:
        record(f"e the command ({backend}, fresh process)", run_command(folder, corpus.files, corpus, backend, work))
    if "c" in args.variants:
        started = time.perf_counter()
        start_local_ray(num_cpus=None, log_to_driver=False, logging_level="WARNING")
        ray_start_s = time.perf_counter() - started
        comp = settings_for(corpus, work / "c", backend, engine="ray", embed_actors=args.embed_actors)
        comp.embedder.warm_up()  # for the queries; the actors load their own copy on the clock
        comps.append(comp)
        record(f"c ray ({backend}, {args.embed_actors} actor)", run_engine(folder, corpus.files, comp, ray=True))
        runs[next(reversed(runs))][-1]["ray_start_s"] = ray_start_s
        stop_local_ray()


def ratios_of(rows: dict[str, dict[str, Any]]) -> dict[str, float]:
    def pick(prefix: str) -> dict[str, Any] | None:
        return next((r for n, r in rows.items() if n.startswith(prefix + " ")), None)

    a, b, c, d, d2, e = pick("a"), pick("b"), pick("c"), pick("d"), pick("d'"), pick("e")
    ratios: dict[str, float] = {}
    if d2 and (d32 := pick("d'32")):
        ratios["d'/d'32 chunks/s"] = d2["chunks_per_s"] / d32["chunks_per_s"]
        ratios["d'/d'32 cpu"] = d32["cpu_s"] / d2["cpu_s"]
    if d2 and (d2c := pick("d'c")):
        ratios["d'/d'c chunks/s"] = d2["chunks_per_s"] / d2c["chunks_per_s"]
        ratios["d'/d'c cpu"] = d2c["cpu_s"] / d2["cpu_s"]
    if a and b:
        ratios["b/a docs/s"] = b["docs_per_s"] / a["docs_per_s"]
        ratios["b/a cpu"] = a["cpu_s"] / b["cpu_s"]
    if a and c:
        ratios["c/a docs/s"] = c["docs_per_s"] / a["docs_per_s"]
    if b and d:
        ratios["b/d chunks/s"] = b["chunks_per_s"] / d["chunks_per_s"]
        ratios["b/d cpu"] = d["cpu_s"] / b["cpu_s"]
    if b and d2:
        ratios["b/d' chunks/s"] = b["chunks_per_s"] / d2["chunks_per_s"]
        ratios["b/d' cpu"] = d2["cpu_s"] / b["cpu_s"]
    if e and d2:
        ratios["e/d' chunks/s"] = e["chunks_per_s"] / d2["chunks_per_s"]
        ratios["e/d' cpu"] = d2["cpu_s"] / e["cpu_s"]
    if e and b:
        ratios["e/b chunks/s"] = e["chunks_per_s"] / b["chunks_per_s"]
        ratios["e/b cpu"] = b["cpu_s"] / e["cpu_s"]
    return ratios


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", action="append", help="ray-html-2023-06 and/or ray-docs (default: both)")
    ap.add_argument("--limit-docs", type=int, default=0, help="files per corpus (0: all)")
    ap.add_argument("--questions", type=int, default=0, help="questions scored per corpus (0: all that apply)")
    ap.add_argument("--backend", default=load_settings().embedding.backend, choices=["onnx", "sentence-transformers"])
    ap.add_argument("--embed-actors", type=int, default=1)
    ap.add_argument(
        "--variants",
        default="a,b,c,d,e",
        help="which of a,b,c,d,d',d'c,e (d runs d' too); b-w: b on the shipped ONNX file; "
        "b-st: b on sentence-transformers",
    )
    ap.add_argument(
        "--rounds", type=int, default=1, help="run the chosen variants this many times in turn; each row is its median"
    )
    args = ap.parse_args()
    args.variants = set(args.variants.split(","))
    corpora = args.corpus or ["ray-html-2023-06", "ray-docs"]

    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    st = SentenceTransformer(str(bundled_minilm_dir()), device="cpu")
    st.encode(["warm up"])
    command = " ".join([".venv/bin/python", "bench/ingest.py", *sys.argv[1:]])
    results: dict[str, Any] = {"command": command, "cpus": os.cpu_count(), "corpora": {}}
    for name in corpora:
        corpus = load_corpus(name, args.limit_docs, args.questions)
        print(f"{name}: {len(corpus.files)} files, {len(corpus.questions)} questions count", flush=True)
        work = Path(tempfile.mkdtemp(prefix="ragline-bench-ingest-"))
        try:
            results["corpora"][name] = bench_corpus(corpus, args, st, work)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        res = results["corpora"][name]
        cols = ["variant", "docs", "chunks", "seconds", "docs_per_s", "chunks_per_s", "cpu_s", "peak_mem_mb"]
        cols += ["mem_added_mb", "hit_rate"]
        print(f"\n{name} ({res['files']} files, hit rate over {res['questions']} questions, top-{K})")
        print(table([{"variant": n, **r} for n, r in res["variants"].items()], cols))
        print("  " + ", ".join(f"{k} = {v:.2f}" for k, v in res["ratios"].items()) + "\n", flush=True)
    print("command:", command)
    print("written", write_json("ingest", results))


if __name__ == "__main__":
    main()
