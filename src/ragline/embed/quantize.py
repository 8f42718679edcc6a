"""Dynamic int8 quantization of the bundled ONNX model, built once and cached by the source file's content.

The shipped file stores its weights as int8 but multiplies in float: ONNX Runtime folds the weights back to
float when it loads it. Quantizing the activations too (per-channel int8 weights, int8 activations chosen per
batch) lets the matrix products run as int8 instructions, which is what makes the difference on a CPU.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path

from ragline.errors import MissingDependencyError

log = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    return Path.home() / ".cache" / "ragline"


def _digest(path: Path) -> str:
    h = hashlib.blake2b(digest_size=8)
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def dynamic_int8(source: Path, cache_dir: Path | None = None) -> Path:
    """The dynamically quantized copy of ``source``: from the cache, or built now (a few seconds) and cached."""
    try:
        import onnxruntime as ort
    except ImportError as e:
        raise MissingDependencyError("onnxruntime", "embed") from e
    cache_dir = cache_dir or default_cache_dir()
    name = f"{source.parent.name}-{source.stem}-dynamic-int8-{_digest(source)}-ort{ort.__version__}.onnx"
    if (cache_dir / name).is_file():
        return cache_dir / name
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        return _build(source, cache_dir, name)
    except OSError as e:  # a read-only home, a full disk: build where we can, every time
        scratch = Path(tempfile.mkdtemp(prefix="ragline-onnx-"))
        log.warning("cannot cache the quantized model in %s (%s); building it in %s", cache_dir, e, scratch)
        return _build(source, scratch, name)


def _build(source: Path, cache_dir: Path, name: str) -> Path:
    import onnxruntime as ort

    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as e:  # the quantization tools need the onnx package
        raise MissingDependencyError("onnx", "embed") from e
    # Parallel first loads (Ray actors, Serve replicas) each build in a folder of their own; the rename is atomic.
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix=".build-") as tmp:
        folded = Path(tmp) / "folded.onnx"
        opts = ort.SessionOptions()
        # Basic level only: constant folding (int8 weights back to float) with standard operators, portable.
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        opts.optimized_model_filepath = str(folded)
        ort.InferenceSession(str(source), opts, providers=["CPUExecutionProvider"])
        quantized = Path(tmp) / name
        quiet = logging.getLogger()
        level = quiet.level
        quiet.setLevel(logging.ERROR)  # the quantizer suggests pre-processing through the root logger
        try:
            quantize_dynamic(folded, quantized, weight_type=QuantType.QInt8, per_channel=True)
        finally:
            quiet.setLevel(level)
        os.replace(quantized, cache_dir / name)
    log.info("built the dynamically quantized model %s", cache_dir / name)
    return cache_dir / name
