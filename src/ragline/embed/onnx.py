"""ONNX Runtime backend for the bundled int8 all-MiniLM-L6-v2: nearly the same vectors, much less CPU."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ragline.embed.base import BaseEmbedder
from ragline.embed.models import bundled_minilm_dir, bundled_minilm_int8_onnx, is_bundled
from ragline.errors import ConfigError, MissingDependencyError

log = logging.getLogger(__name__)

_DIMENSION = 384
_MAX_TOKENS = 256  # all-MiniLM-L6-v2's max_seq_length


class OnnxEmbedder(BaseEmbedder):
    """Mean-pooled ``last_hidden_state`` over the attention mask, as the model was trained.

    Each text runs alone by default (``batch_size=1``). The dynamically quantized model picks its activation
    scales per forward pass, so in a batch a vector also depends on the other texts and on the padding; alone,
    it depends on its text only, and a document's chunks are embedded exactly as a question is. Nothing is
    padded either, which on the Ray docs' chunks made single passes 1.29 times the chunks/s of token-sorted
    batches of 32 (bench/ingest.py, d' against d'32).
    """

    def __init__(
        self,
        model: str,
        *,
        threads: int | None = None,
        quantization: Literal["dynamic", "weights"] = "dynamic",
        cache_dir: Path | None = None,
        batch_size: int = 1,
        **kw: Any,
    ) -> None:
        super().__init__(batch_size=batch_size, **kw)
        if not is_bundled(model):
            raise ConfigError(f"the onnx backend only serves the bundled MiniLM, not {model!r}")
        self.model = model
        self.name = model
        self.threads = threads
        self.quantization = quantization
        self.cache_dir = cache_dir
        self._session: Any = None
        self._tokenizer: Any = None
        self._counter: Any = None

    def _load(self) -> None:
        try:
            import onnxruntime as ort
        except ImportError as e:
            raise MissingDependencyError("onnxruntime", "embed") from e
        opts = ort.SessionOptions()
        if self.threads:
            opts.intra_op_num_threads = self.threads
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self._session = ort.InferenceSession(str(self.model_file()), opts, providers=["CPUExecutionProvider"])
        self._load_tokenizers()
        self._inputs = {i.name for i in self._session.get_inputs()}

    def _load_tokenizers(self) -> None:
        if self._counter is not None:
            return
        try:
            from tokenizers import Tokenizer
        except ImportError as e:
            raise MissingDependencyError("tokenizers", "embed") from e
        tok_file = str(bundled_minilm_dir() / "tokenizer.json")
        self._tokenizer = Tokenizer.from_file(tok_file)
        self._tokenizer.enable_truncation(_MAX_TOKENS)
        self._tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        counter = Tokenizer.from_file(tok_file)
        counter.no_truncation()
        counter.no_padding()
        self._counter = counter

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` alone (no special tokens); needs the tokenizer only, not the model, so an
        ingest's chunker (which only counts) never loads a model session of its own."""
        if self._counter is None:
            self._load_tokenizers()
        return len(self._counter.encode(text, add_special_tokens=False).ids)

    def model_file(self) -> Path:
        """The ONNX file this embedder runs (building the dynamically quantized one on first use)."""
        shipped = bundled_minilm_int8_onnx()
        if self.quantization == "weights":
            return shipped
        from ragline.embed.quantize import dynamic_int8

        return dynamic_int8(shipped, self.cache_dir)

    @property
    def dimension(self) -> int:
        return _DIMENSION

    @property
    def max_tokens(self) -> int:
        return _MAX_TOKENS

    def _token_lengths(self, texts: Sequence[str]) -> list[int]:
        return [len(e.ids) for e in self._counter.encode_batch(list(texts), add_special_tokens=False)]

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        # One text: ``encode`` (a batch call hands the GIL over and back once more, and with the ingest's
        # chunker busy in Python each hand-back can keep a core waiting).
        enc = [self._tokenizer.encode(texts[0])] if len(texts) == 1 else self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in enc], dtype=np.int64)
        mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = self._session.run(None, feeds)[0]
        m = mask[..., None].astype(np.float32)
        return (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
