"""Publishing an index generation under load: /search failures and latency while `ragline ingest` publishes.

    .venv/bin/python bench/generations.py [--clients 3] [--seconds 15] [--engines uvicorn,ray-ingress,ray-deployment]

On an index of ../shared/corpora/ray-docs/serve (built once into --data-dir, then reused), each server takes two
loads of --clients clients posting /search for --seconds seconds, side by side: one quiet, one during which a
`ragline ingest` subprocess (started a second in) adds a page, builds a new generation and publishes it (the
load runs on until the ingest has finished and two more seconds have passed). The ingest's own CPU is part of
what the clients feel: on 2 cores it competes with the server. Servers: `ragline serve --engine uvicorn` in its
own process, and Ray Serve on 127.0.0.1 with retrieval in the ingress replica and as a deployment (2 replicas).
After each publish the bench checks that /readyz reports the new generation. Prints a table and writes
bench/results/generations.json.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import need_corpora, table, write_json
from serve import Load, _http_load, bench_settings, ray_serve, uvicorn_serve

from ragline.components import Components
from ragline.ingest.local import ingest

QUESTIONS = [
    "How do I scale a deployment to more replicas?",
    "What is a DeploymentHandle?",
    "How do I configure autoscaling in Ray Serve?",
    "How do I batch requests in a deployment?",
    "How do I deploy a FastAPI app with Ray Serve?",
    "What does max_ongoing_requests do?",
    "How do I run Serve on Kubernetes?",
    "How do I stream responses from a deployment?",
]
NEW_PAGE = "# Quasar widget\n\n## Tuning\n\nTune the quasar widget with {n} turns of its silver dial.\n"
COLUMNS = ["engine", "load", "clients", "requests", "failed", "qps", "p50_ms", "p99_ms", "publish_s", "generation"]


def build_index(corpus: Path, data_dir: Path, args: argparse.Namespace) -> None:
    """The served corpus, ingested once (later runs find it unchanged)."""
    comp = Components(bench_settings(data_dir, args))
    try:
        started = time.perf_counter()
        report = ingest([corpus], comp)
        print(
            f"index: {report.documents} documents, {comp.store.count()} chunks ({time.perf_counter() - started:.0f} s)"
        )
    finally:
        comp.close()


def publish(extra: Path, data_dir: Path, n: int) -> float:
    """`ragline ingest` of a folder whose one page changed: a new generation, published. Returns its seconds."""
    (extra / "quasar.md").write_text(NEW_PAGE.format(n=n), encoding="utf-8")
    env = {**os.environ, "RAGLINE_DATA_DIR": str(data_dir), "RAGLINE_EMBEDDING__THREADS": "1"}
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "ragline.cli", "-q", "ingest", str(extra)], env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"ingest failed: {done.stderr[-2000:]}")
    return time.monotonic() - started


def measure(url: str, args: argparse.Namespace, during: Any = None) -> tuple[Load, float | None]:
    """One bounded load on /search; ``during`` (a callable returning seconds) runs a second in, in a thread, and
    the load lasts until it ended and two more seconds passed (never past 4 x --seconds)."""
    took: list[float] = []
    finished = threading.Event()

    def side() -> None:
        time.sleep(1.0)
        try:
            took.append(during())
        finally:
            finished.set()

    if during is not None:
        threading.Thread(target=side, daemon=True).start()
    load = asyncio.run(
        _http_load(f"{url}/search", lambda q: {"query": q, "k": 5}, QUESTIONS, args.clients, args.seconds, 100_000)
    )
    if during is not None:
        extra = Load()
        while not finished.wait(0.1):  # the publish outlasted the load: go on measuring until it ends
            part = asyncio.run(
                _http_load(
                    f"{url}/search", lambda q: {"query": q, "k": 5}, QUESTIONS, args.clients, 1.0, 100_000, warm=False
                )
            )
            extra.latencies += part.latencies
            extra.errors += part.errors
            extra.seconds += part.seconds
            if load.seconds + extra.seconds > 4 * args.seconds:
                break
        tail = asyncio.run(
            _http_load(
                f"{url}/search", lambda q: {"query": q, "k": 5}, QUESTIONS, args.clients, 2.0, 100_000, warm=False
            )
        )
        for part in (extra, tail):
            load.latencies += part.latencies
            load.errors += part.errors
            load.seconds += part.seconds
            for k, v in part.statuses.items():
                load.statuses[k] = load.statuses.get(k, 0) + v
    return load, (took[0] if took else None)


def served_generation(url: str) -> Any:
    import httpx

    return httpx.get(f"{url}/readyz", timeout=30).json().get("generation")


def run_engine(name: str, url: str, args: argparse.Namespace, extra: Path, n: int) -> list[dict[str, Any]]:
    rows = []
    quiet, _ = measure(url, args)
    rows.append(quiet.row(engine=name, load="no publish", clients=args.clients) | {"failed": quiet.errors})
    loaded, took = measure(url, args, lambda: publish(extra, args.data_dir, n))
    deadline = time.monotonic() + 10
    generation = served_generation(url)
    while generation and generation.get("served") != generation.get("published") and time.monotonic() < deadline:
        time.sleep(0.2)
        generation = served_generation(url)
    row = loaded.row(engine=name, load="publish", clients=args.clients)
    rows.append(row | {"failed": loaded.errors, "publish_s": took, "generation": _short(generation)})
    if loaded.errors:
        print(f"  {name}: statuses {loaded.statuses}")
    return rows


def _short(generation: Any) -> str:
    if not isinstance(generation, dict):
        return str(generation)
    return f"{generation.get('served')}/{generation.get('published')}"


@contextmanager
def ray_engine(args: argparse.Namespace, placement: str) -> Iterator[str]:
    settings = bench_settings(args.data_dir, args)
    settings.serve.retriever = settings.serve.retriever.model_copy(
        update={"placement": placement, "num_replicas": 1 if placement == "ingress" else 2}
    )
    with ray_serve(settings) as url:
        yield url


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=15, help="length of each load (a publish's may run longer)")
    ap.add_argument("--engines", default="uvicorn,ray-ingress,ray-deployment")
    ap.add_argument("--port", type=int, default=8775)
    ap.add_argument("--data-dir", type=Path, default=Path("/tmp/ragline-bench-generations"))
    args = ap.parse_args()
    args.threads, args.max_tokens, args.retriever_replicas = 1, 32, 2  # what bench_settings reads
    logging.getLogger("ragline.ingest").setLevel(logging.ERROR)
    corpus = need_corpora("ray-docs", "serve")
    build_index(corpus, args.data_dir, args)
    extra = args.data_dir.parent / "ragline-bench-generations-extra"
    extra.mkdir(exist_ok=True)
    rows: list[dict[str, Any]] = []
    for n, engine in enumerate(args.engines.split(",")):
        started = time.perf_counter()
        if engine == "uvicorn":
            with uvicorn_serve(args.data_dir, args) as url:
                rows += run_engine(engine, url, args, extra, n)
        else:
            with ray_engine(args, engine.removeprefix("ray-")) as url:
                rows += run_engine(engine, url, args, extra, n)
        print(f"{engine}: {time.perf_counter() - started:.0f} s")
        print(table(rows[-2:], COLUMNS))
    print()
    print(table(rows, COLUMNS))
    meta = {"clients": args.clients, "seconds": args.seconds, "cpus": os.cpu_count(), "corpus": "ray-docs/serve"}
    print(f"wrote {write_json('generations', {'settings': meta, 'rows': rows})}")


if __name__ == "__main__":
    main()
