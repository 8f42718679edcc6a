"""The hash embedder the plumbing tests use passes the contract every real backend passes."""

from __future__ import annotations

import pytest
from fakes import HashEmbedder

from ragline.embed import Embedder

from .contract import EmbedderContract


class TestHashEmbedderContract(EmbedderContract):
    @pytest.fixture()
    def embedder(self) -> Embedder:
        return HashEmbedder()
