"""Serving under bounded load on 127.0.0.1: Ray Serve over HTTP against the same calls made in-process.

    .venv/bin/python bench/serve.py [--clients 16] [--seconds 60] [--answer-clients 4] [--answer-seconds 60]
        [--max-tokens 48] [--size 100000] [--unique 2000] [--no-size-test] [--data-dir DIR]

On an index of ../shared/corpora/ray-docs (built once, then reused: ingest is incremental):
  retrieval-only   in-process Retriever.search, 1 client  vs  POST /search, 1 client and --clients clients, on
                   `ragline serve --engine uvicorn` (HTTP alone) and on Ray Serve (HTTP + proxy + handles); the
                   baseline: 1 client on Ray Serve without the fast path (serve.fast_path=false)
  full answers     in-process Agent.ask, 1 client         vs  POST /query on Ray Serve, --answer-clients clients
then retrieval-only again on a --size-chunk index (ray-docs chunks repeated with perturbed vectors, cached).
The overhead columns (HTTP; HTTP + HAProxy + ingress replica + handle call) come from a separate pass per server:
every question asked in-process (on a private copy of the index) and over HTTP, alternating in blocks of 10, so
the machine's drift hits every side; each is the median over questions of the gap between their p50s. HTTP is
asked by a keep-alive standard-library client (overhead_ms) and by httpx (overhead_httpx_ms, which adds the
client library's own cost). Every load is bounded by time and by --max-requests. Ray runs on 127.0.0.1 with
2 CPUs; the embedder uses --threads threads in-process and in each replica alike. Prints a table and writes
bench/results/serve.json.

Where one answer's wait for its first words goes (retrieval, the model reading its prompt, the first sentence,
the model's load) is measured by bench/first_token.py, in-process and over Ray Serve.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import http.client
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import need_corpora, percentile, table, write_json

from ragline.api.settings import GeneratorSettings, IngressSettings, RetrieverSettings, ServeSettings
from ragline.components import Components
from ragline.config import Settings, load_settings
from ragline.ingest.local import ingest
from ragline.records import Chunk

URL_TEMPLATE = "https://docs.ray.io/en/master/{path_noext}.html"
COLUMNS = [
    "index",
    "chunks",
    "mode",
    "path",
    "clients",
    "requests",
    "qps",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "errors_pct",
    "overhead_ms",
    "overhead_httpx_ms",
]


@dataclass
class Load:
    """Latencies (ms) and failures of one measured run."""

    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    seconds: float = 0.0
    statuses: dict[str, int] = field(default_factory=dict)
    by_question: dict[str, list[float]] = field(default_factory=dict)  # successful latencies per question

    def add(self, question: str, ms: float) -> None:
        self.latencies.append(ms)
        self.by_question.setdefault(question, []).append(ms)

    def row(self, **labels: Any) -> dict[str, Any]:
        n = len(self.latencies) + self.errors
        return {
            **labels,
            "requests": n,
            "qps": n / self.seconds if self.seconds else float("nan"),
            "p50_ms": percentile(self.latencies, 50),
            "p95_ms": percentile(self.latencies, 95),
            "p99_ms": percentile(self.latencies, 99),
            "errors_pct": 100.0 * self.errors / n if n else 0.0,
        }


def paired_overhead(served: Load, local: Load) -> float:
    """Median over the questions asked both ways of (served median - in-process median), in ms.

    Paired by question: retrieval time depends on the question, and the two loads ask different numbers of
    them, so the difference of two overall p50s would mix the serving cost with the question mix."""
    both = served.by_question.keys() & local.by_question.keys()
    gaps = [float(np.median(served.by_question[q]) - np.median(local.by_question[q])) for q in both]
    return float(np.median(gaps)) if gaps else float("nan")


# -- indexes -------------------------------------------------------------------------------------------


def bench_settings(data_dir: Path, args: argparse.Namespace) -> Settings:
    s = load_settings(data_dir=data_dir)
    s.embedding.threads = args.threads
    s.llm.max_tokens = args.max_tokens
    s.parse.url_template = URL_TEMPLATE
    s.serve = ServeSettings(
        port=args.port,
        max_k=10,
        request_timeout=600,
        max_concurrent_answers=64,
        ingress=IngressSettings(num_replicas=1, max_ongoing_requests=256),
        retriever=RetrieverSettings(num_replicas=args.retriever_replicas, num_cpus=0.5, max_ongoing_requests=64),
        generator=GeneratorSettings(num_replicas=1, num_cpus=1, max_ongoing_requests=4),
    )
    return s


def ray_docs_index(data_dir: Path, args: argparse.Namespace) -> int:
    comp = Components(bench_settings(data_dir, args))
    try:
        started = time.perf_counter()
        report = ingest([need_corpora("ray-docs")], comp)
        elapsed = time.perf_counter() - started
        print(f"ray-docs: {report.index_chunks} chunks ({report.chunks_written} written) in {elapsed:.0f} s")
        return report.index_chunks
    finally:
        comp.close()


def synthetic_index(source_dir: Path, data_dir: Path, args: argparse.Namespace) -> int:
    """``--size`` chunks: ``--unique`` real ray-docs chunks, embedded once, repeated with perturbed vectors."""
    comp = Components(bench_settings(data_dir, args))
    try:
        if comp.store.info() is not None and comp.store.count() == args.size:
            return args.size
    finally:
        comp.close()
    src = Components(bench_settings(source_dir, args))
    try:
        src.open_for_reading()
        chunks = [Chunk.from_payload(p) for _, p in src.store.points()][: args.unique]
        started = time.perf_counter()
        vectors = src.embedder.embed_documents([c.embedding_text() for c in chunks])
        print(f"synthetic: embedded {len(chunks)} unique chunks in {time.perf_counter() - started:.0f} s")
        info = src.index_info()
    finally:
        src.close()
    dst = Components(bench_settings(data_dir, args))
    rng = np.random.default_rng(0)
    try:
        dst.store.open(info, recreate=True)
        written, copy = 0, 0
        while written < args.size:
            n = min(len(chunks), args.size - written)
            copies = [_copy(c, copy) for c in chunks[:n]]
            noisy = vectors[:n] + rng.normal(0, 0.03, size=vectors[:n].shape).astype(np.float32)
            noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
            dst.store.upsert(copies, noisy)
            written += n
            copy += 1
        started = time.perf_counter()
        dst.store.flush()  # builds the HNSW graph
        print(f"synthetic: {written} chunks, index optimised in {time.perf_counter() - started:.0f} s")
        return dst.store.count()
    finally:
        dst.close()


def _copy(chunk: Chunk, n: int) -> Chunk:
    source = f"{chunk.source}?copy={n}"
    return Chunk(
        doc_id=f"{chunk.doc_id}-{n}",
        source=source,
        title=chunk.title,
        section=chunk.section,
        anchor=chunk.anchor,
        text=chunk.text,
        start=chunk.start,
        end=chunk.end,
        index=chunk.index,
        kind=chunk.kind,
        doc_hash=chunk.doc_hash,
        metadata=dict(chunk.metadata),
    )


# -- in-process ------------------------------------------------------------------------------------------


def in_process(settings: Settings, call: Callable[[Components, str], Any], questions: list[str], n: int) -> Load:
    comp = Components(settings)
    try:
        comp.open_for_reading()
        call(comp, "warm up")
        load = Load()
        started = time.perf_counter()
        for q in (questions * (n // len(questions) + 1))[:n]:
            t = time.perf_counter()
            call(comp, q)
            load.add(q, (time.perf_counter() - t) * 1000)
        load.seconds = time.perf_counter() - started
        return load
    finally:
        comp.close()
        del comp
        gc.collect()


@contextmanager
def private_components(settings: Settings) -> Iterator[Components]:
    """The in-process retriever on its own copy of the index, open beside a server that holds the original."""
    from ragline.serving.replica_copy import private_index

    copied, root = private_index(settings)
    comp = Components(copied)
    try:
        comp.open_for_reading()
        comp.retriever.search("warm up", 5)
        yield comp
    finally:
        comp.close()
        if root is not None:
            root.release()


class KeepAliveClient:
    """POSTs JSON over one kept-alive connection with the standard library: a few tens of microseconds per
    request, where httpx's client spends most of a millisecond of its own. The overhead pass measures the
    server with it, and with httpx beside it for comparison."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.path = parts.path
        self.connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=60)

    def post(self, body: dict[str, Any]) -> int:
        payload = json.dumps(body).encode()
        self.connection.request("POST", self.path, body=payload, headers={"content-type": "application/json"})
        response = self.connection.getresponse()
        response.read()
        return response.status

    def close(self) -> None:
        self.connection.close()


@dataclass
class Overhead:
    """One overhead pass: the same questions in-process, with the keep-alive client, and with httpx."""

    local: Load = field(default_factory=Load)
    lean: Load = field(default_factory=Load)
    httpx: Load = field(default_factory=Load)


def interleaved(comp: Components, url: str, questions: list[str], rounds: int, block: int = 10) -> Overhead:
    """The same questions in-process and over HTTP (two clients), alternating in blocks of ``block`` questions.

    A shared machine's load drifts from minute to minute; alternating every ~0.2 s lets the drift hit every side
    alike, so the paired gap is the serving cost and not a change of weather between two separate loads."""
    import httpx

    result = Overhead()
    lean = KeepAliveClient(url)
    with httpx.Client(timeout=60) as http:
        sides: list[tuple[Load, Callable[[str], int]]] = [
            (result.local, lambda q: (comp.retriever.search(q, 5), 200)[1]),
            (result.lean, lambda q: lean.post(search_body(q))),
            (result.httpx, lambda q: http.post(url, json=search_body(q)).status_code),
        ]
        for _, ask in sides:
            for q in questions[:3]:
                assert ask(q) == 200, f"{url} failed while warming up"
        for _ in range(rounds):
            for start in range(0, len(questions), block):
                for load, ask in sides:
                    for q in questions[start : start + block]:
                        t = time.perf_counter()
                        status = ask(q)
                        if status == 200:
                            load.add(q, (time.perf_counter() - t) * 1000)
                        else:
                            load.errors += 1
    lean.close()
    return result


# -- HTTP load -------------------------------------------------------------------------------------------


async def _http_load(
    url: str,
    make_body: Callable[[str], dict[str, Any]],
    questions: list[str],
    clients: int,
    seconds: float,
    cap: int,
    warm: bool = True,
    polite: bool = False,
) -> Load:
    """``polite``: a client told 429/503 with Retry-After waits that long before its next request, as a
    well-behaved client does (otherwise it asks again at once)."""
    import httpx

    load = Load()
    counter = iter(range(cap))
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=900, limits=limits) as http:
        for q in questions[:3] if warm else ():  # warm-up: connections, replicas, caches
            await http.post(url, json=make_body(q))
        deadline = time.perf_counter() + seconds

        async def client(offset: int) -> None:
            i = offset
            while time.perf_counter() < deadline and next(counter, None) is not None:
                question = questions[i % len(questions)]
                body = make_body(question)
                i += clients
                t = time.perf_counter()
                try:
                    r = await http.post(url, json=body)
                    status, headers = str(r.status_code), r.headers
                except Exception as e:  # counted, never fatal: a load test reports errors
                    status, headers = type(e).__name__, httpx.Headers()
                elapsed = (time.perf_counter() - t) * 1000
                load.statuses[status] = load.statuses.get(status, 0) + 1
                if status == "200":
                    load.add(question, elapsed)
                else:
                    load.errors += 1
                    wait = headers.get("retry-after") if polite and status in ("429", "503") else None
                    if wait:
                        await asyncio.sleep(min(float(wait), max(0.0, deadline - time.perf_counter())))

        started = time.perf_counter()
        await asyncio.gather(*(client(n) for n in range(clients)))
        load.seconds = time.perf_counter() - started
    return load


def http_load(
    url: str, make_body: Callable[[str], dict[str, Any]], questions: list[str], clients: int, seconds: float, cap: int
) -> Load:
    load = asyncio.run(_http_load(url, make_body, questions, clients, seconds, cap))
    if load.errors:
        print(f"  {url}: statuses {json.dumps(load.statuses)}")
    return load


@contextmanager
def uvicorn_serve(data_dir: Path, args: argparse.Namespace, **settings: str) -> Iterator[str]:
    """`ragline serve --engine uvicorn` in its own process: the HTTP cost without Ray Serve. ``settings``
    are environment variables on top (RAGLINE_...)."""
    import httpx

    port = args.port + 1
    env = {**os.environ, "RAGLINE_EMBEDDING__THREADS": str(args.threads), "RAGLINE_SERVE__MAX_K": "10", **settings}
    cmd = [
        sys.executable,
        "-m",
        "ragline.cli",
        "-q",
        "serve",
        "--engine",
        "uvicorn",
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
    ]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("ragline serve --engine uvicorn did not start")
            time.sleep(0.5)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)


@contextmanager
def ray_serve(settings: Settings) -> Iterator[str]:
    from ragline.ray_local import stop_local_ray
    from ragline.serving import app as serve

    started = time.perf_counter()
    try:
        url = serve.run(settings, log_to_driver=False)
        print(f"Ray Serve up at {url} in {time.perf_counter() - started:.0f} s")
        yield url
    finally:
        serve.shutdown()
        stop_local_ray()


# -- the run ---------------------------------------------------------------------------------------------


def search_body(q: str) -> dict[str, Any]:
    return {"query": q, "k": 5}


def answer_body(q: str) -> dict[str, Any]:
    return {"query": q, "k": 5}


def alternating_overhead(
    settings: Settings, url: str, questions: list[str], args: argparse.Namespace
) -> dict[str, float]:
    """The overhead columns of a row: with the keep-alive client, and with httpx."""
    with private_components(settings) as comp:
        passes = interleaved(comp, url, questions, args.overhead_rounds)
    errors = passes.lean.errors + passes.httpx.errors
    if errors:
        print(f"  {url}: {errors} errors while measuring the overhead")
    return {
        "overhead_ms": paired_overhead(passes.lean, passes.local),
        "overhead_httpx_ms": paired_overhead(passes.httpx, passes.local),
    }


def bench_index(
    name: str, data_dir: Path, chunks: int, answers: bool, args: argparse.Namespace, questions: list[str]
) -> list[dict[str, Any]]:
    settings = bench_settings(data_dir, args)
    label = {"index": name, "chunks": chunks}
    rows = []
    searches = args.inprocess_searches or 2 * len(questions)  # every question twice, as the HTTP loads do
    search = in_process(settings, lambda c, q: c.retriever.search(q, 5), questions, searches)
    rows.append(search.row(**label, mode="retrieval", path="in-process", clients=1))
    if answers:
        asks = in_process(settings, lambda c, q: c.agent.ask(q, k=5), questions, args.inprocess_answers)
        rows.append(asks.row(**label, mode="answer", path="in-process", clients=1))
    with uvicorn_serve(data_dir, args) as url:
        one = http_load(f"{url}/search", search_body, questions, 1, min(args.seconds, 15), args.max_requests)
        rows.append(one.row(**label, mode="retrieval", path="http+uvicorn", clients=1))
        rows[-1] |= alternating_overhead(settings, f"{url}/search", questions, args)
        many = http_load(f"{url}/search", search_body, questions, args.clients, args.seconds, args.max_requests)
        rows.append(many.row(**label, mode="retrieval", path="http+uvicorn", clients=args.clients))
    for placement in args.placements.split(","):
        # where retrieval runs: inside the ingress replicas (the default), or a deployment of its own
        placed = settings.model_copy(deep=True)
        placed.serve.retriever.placement = placement  # type: ignore[assignment]
        path = "http+ray" if placement == "deployment" else f"http+ray-{placement}"
        with ray_serve(placed) as url:
            one = http_load(f"{url}/search", search_body, questions, 1, min(args.seconds, 15), args.max_requests)
            rows.append(one.row(**label, mode="retrieval", path=path, clients=1))
            rows[-1] |= alternating_overhead(placed, f"{url}/search", questions, args)
            many = http_load(f"{url}/search", search_body, questions, args.clients, args.seconds, args.max_requests)
            rows.append(many.row(**label, mode="retrieval", path=path, clients=args.clients))
            if answers:
                full = http_load(
                    f"{url}/query", answer_body, questions, args.answer_clients, args.answer_seconds, args.max_requests
                )
                rows.append(full.row(**label, mode="answer", path=path, clients=args.answer_clients))
    if not args.no_classic:  # the baseline: Serve's Python proxy and actor calls between deployments
        classic = settings.model_copy(update={"serve": settings.serve.model_copy(update={"fast_path": False})})
        with ray_serve(classic) as url:
            one = http_load(f"{url}/search", search_body, questions, 1, min(args.seconds, 15), args.max_requests)
            rows.append(one.row(**label, mode="retrieval", path="http+ray-classic", clients=1))
            rows[-1] |= alternating_overhead(classic, f"{url}/search", questions, args)
    for r in rows:
        print(table([r], COLUMNS).splitlines()[-1])
    return rows


SATURATION_COLUMNS = ["limits", "load", "clients", "requests", "p50_ms", "p95_ms", "errors_pct", "statuses"]


def saturation(data_dir: Path, args: argparse.Namespace, questions: list[str]) -> list[dict[str, Any]]:
    """/search alone, then /search beside --saturate-clients clients asking for generated answers (non-streaming,
    the bundled model), on `ragline serve --engine uvicorn` with the default answer limits and with the limits
    lifted (every answer admitted, as before they existed): search p50/p95 and the answers' statuses."""
    rows = []
    searches = max(1, args.search_clients)
    for limits, env in (
        ("default", {}),
        ("unbounded", {"RAGLINE_SERVE__MAX_CONCURRENT_ANSWERS": "100000"}),
    ):
        env |= {"RAGLINE_ANSWER__MODE": "generative", "RAGLINE_LLM__MAX_TOKENS": str(args.max_tokens)}
        with uvicorn_serve(data_dir, args, **env) as url:
            alone = http_load(
                f"{url}/search", search_body, questions, searches, args.saturation_seconds, args.max_requests
            )
            both = asyncio.run(_beside(url, questions, args))
        for name, load, clients in (
            ("search alone", alone, searches),
            ("search beside answers", both[0], searches),
            ("answers", both[1], args.saturate_clients),
        ):
            row = load.row(limits=limits, load=name, clients=clients)
            rows.append({**row, "statuses": json.dumps(dict(sorted(load.statuses.items())))})
            print(table([rows[-1]], SATURATION_COLUMNS).splitlines()[-1])
    return rows


async def _beside(url: str, questions: list[str], args: argparse.Namespace) -> tuple[Load, Load]:
    seconds, cap = args.saturation_seconds, args.max_requests
    search = _http_load(f"{url}/search", search_body, questions, max(1, args.search_clients), seconds, cap)
    answers = _http_load(
        f"{url}/query", answer_body, questions, args.saturate_clients, seconds, cap, warm=False, polite=True
    )
    found, answered = await asyncio.gather(search, answers)
    return found, answered


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=16, help="concurrent clients, retrieval-only")
    ap.add_argument("--seconds", type=float, default=60, help="length of each retrieval-only load")
    ap.add_argument("--answer-clients", type=int, default=4, help="concurrent clients, full answers")
    ap.add_argument("--answer-seconds", type=float, default=60, help="length of the full-answer load")
    ap.add_argument("--max-requests", type=int, default=50_000, help="cap on requests per load")
    ap.add_argument("--max-tokens", type=int, default=48, help="answer length (tokens)")
    ap.add_argument("--inprocess-searches", type=int, help="default: every question twice")
    ap.add_argument("--inprocess-answers", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1, help="embedder threads, in-process and per replica")
    ap.add_argument("--retriever-replicas", type=int, default=2)
    ap.add_argument("--size", type=int, default=100_000, help="chunks in the size test")
    ap.add_argument("--unique", type=int, default=2000, help="distinct chunks embedded for the size test")
    ap.add_argument("--no-size-test", action="store_true")
    ap.add_argument("--no-classic", action="store_true", help="skip the baseline: Ray Serve without the fast path")
    ap.add_argument(
        "--placements",
        default="deployment,ingress",
        help="where retrieval runs on Ray Serve, one server each: its own deployment, inside the ingress",
    )
    ap.add_argument("--overhead-rounds", type=int, default=2, help="passes over the questions, alternating sides")
    ap.add_argument("--saturation", action="store_true", help="only the saturation test: search beside an answer load")
    ap.add_argument("--saturate-clients", type=int, default=48, help="answer clients in the saturation test")
    ap.add_argument("--search-clients", type=int, default=4, help="search clients in the saturation test")
    ap.add_argument("--saturation-seconds", type=float, default=40, help="length of each saturation load")
    ap.add_argument("--port", type=int, default=8765)
    ap.add_argument("--data-dir", type=Path, default=Path(tempfile.gettempdir()) / "ragline-bench-serve")
    args = ap.parse_args()
    logging.getLogger("ragline.ingest").setLevel(logging.ERROR)  # skipped files are expected here

    questions = [
        json.loads(line)["question"]
        for line in need_corpora("ray-eval", "questions-dev.jsonl").read_text().splitlines()
        if line.strip()
    ]
    docs_dir = args.data_dir / "ray-docs"
    if args.saturation:
        ray_docs_index(docs_dir, args)
        rows = saturation(docs_dir, args, questions)
        print()
        print(table(rows, SATURATION_COLUMNS))
        payload = {"args": {k: str(v) for k, v in vars(args).items()}, "rows": rows}
        print("written", write_json("serve-saturation", payload))
        return
    rows = bench_index("ray-docs", docs_dir, ray_docs_index(docs_dir, args), True, args, questions)
    if not args.no_size_test:
        big_dir = args.data_dir / f"synthetic-{args.size}"
        chunks = synthetic_index(docs_dir, big_dir, args)
        rows += bench_index(f"synthetic-{args.size // 1000}k", big_dir, chunks, False, args, questions)

    print()
    print(table(rows, COLUMNS))
    for r in rows:
        if "overhead_ms" in r:
            print(
                f"{r['index']}: serving overhead, 1 client, {r['path']} /search vs in-process Retriever.search, "
                f"median over questions of the p50 gap: {r['overhead_ms']:.1f} ms "
                f"(with httpx as the client: {r['overhead_httpx_ms']:.1f} ms)"
            )
    print("written", write_json("serve", {"args": {k: str(v) for k, v in vars(args).items()}, "rows": rows}))


if __name__ == "__main__":
    main()
