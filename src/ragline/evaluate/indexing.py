"""Index a benchmark once into a cache folder keyed by everything that shapes the index.

Methods differ only at query time (dense and BM25 vectors live in the same points), so one index per
chunking / embedding-text / model choice serves every method.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
from pathlib import Path

import ragline.parse as parse_package
from ragline.components import Components
from ragline.config import Settings
from ragline.evaluate.benchmarks import Benchmark
from ragline.ingest.local import index_documents, ingest
from ragline.ingest.report import IndexReport
from ragline.records import Chunk, Loaded
from ragline.store import sparse

log = logging.getLogger(__name__)


def index_key(settings: Settings) -> str:
    """A short hash of what decides the index's content: chunking, model, embedding text, BM25 settings."""
    parts = {
        "chunk": settings.chunk.model_dump(),
        "model": settings.embedding.model,
        # the backend's numerics: the ONNX file (and its quantization) gives slightly different vectors
        "backend": [settings.embedding.backend, settings.embedding.onnx_quantization]
        if settings.embedding.backend == "onnx"
        else settings.embedding.backend,
        "prefix": settings.embedding.document_prefix,
        # texts per forward pass (None: the backend's own): in a batch, quantized activations are scaled together
        "batch": settings.embedding.batch_size,
        "parse": settings.parse.model_dump(mode="json", exclude={"url_template"}),
        "parsers": _parser_code_hash(),
        "embedding_text": inspect.getsource(Chunk.embedding_text),
        "bm25_avg_len": sparse.AVG_LEN,
    }
    return hashlib.blake2b(json.dumps(parts, sort_keys=True).encode(), digest_size=6).hexdigest()


def _parser_code_hash() -> str:
    """The parsers' source: a parser change re-indexes instead of reusing text parsed the old way."""
    folder = Path(parse_package.__file__).parent
    digest = hashlib.blake2b(digest_size=6)
    for path in sorted(folder.glob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def index_dir(cache: Path, bench: Benchmark, settings: Settings) -> Path:
    return cache / f"{bench.name}-{index_key(settings)}"


def build_index(bench: Benchmark, components: Components) -> IndexReport:
    """Bring the index in ``components``' data dir in line with the benchmark's corpus (incremental)."""
    if bench.corpus is not None:
        loaded = (Loaded(d.source, document=d) for d in bench.documents())
        return index_documents(loaded, [], components)
    bench.configure(components.settings)
    return ingest(bench.paths, components)
