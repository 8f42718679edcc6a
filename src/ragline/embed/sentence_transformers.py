"""sentence-transformers backend: any model name or path, the bundled MiniLM by default."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from ragline.embed.base import BaseEmbedder
from ragline.embed.models import is_bundled, resolve_model
from ragline.errors import ConfigError, MissingDependencyError

log = logging.getLogger(__name__)


class SentenceTransformerEmbedder(BaseEmbedder):
    def __init__(self, model: str, *, device: str = "cpu", threads: int | None = None, **kw: Any) -> None:
        super().__init__(**kw)
        self.model = model
        self.name = model
        self.device = device
        self.threads = threads
        self._st: Any = None

    def _load(self) -> None:
        try:
            import torch
            from sentence_transformers import SentenceTransformer
        except ImportError as e:
            raise MissingDependencyError("sentence-transformers", "embed") from e
        if self.threads:
            torch.set_num_threads(self.threads)
        path = resolve_model(self.model)
        if is_bundled(self.model):
            # A local folder needs no hub; make sure nothing tries one anyway.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()
        except ImportError:  # pragma: no cover - older transformers
            pass
        try:
            self._st = SentenceTransformer(path, device=self.device)
        except Exception as e:  # the library raises many kinds; all mean "cannot load this model"
            raise ConfigError(f"cannot load embedding model {self.model!r}: {e}") from e
        # Counting tokens of long texts is expected (chunking); ST truncates with its own max_seq_length.
        self._st.tokenizer.model_max_length = 1_000_000
        log.info("embedding model %s loaded (%d max tokens)", self.model, self._st.max_seq_length)

    @property
    def dimension(self) -> int:
        self.warm_up()
        get = getattr(self._st, "get_embedding_dimension", None) or self._st.get_sentence_embedding_dimension
        dim = get()
        return int(dim)

    @property
    def max_tokens(self) -> int:
        self.warm_up()
        return int(self._st.max_seq_length)

    def _token_lengths(self, texts: Sequence[str]) -> list[int]:
        enc = self._st.tokenizer(list(texts), add_special_tokens=False, truncation=False)["input_ids"]
        return [len(ids) for ids in enc]

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        return np.asarray(
            self._st.encode(
                texts,
                batch_size=len(texts),
                convert_to_numpy=True,
                normalize_embeddings=False,
                show_progress_bar=False,
            ),
            dtype=np.float32,
        )
