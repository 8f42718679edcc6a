"""The composition root: builds each part once from settings, lazily, so commands pay only for what they use."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from ragline.config import BUNDLED_EMBEDDING_MODEL, Settings
from ragline.embed import Embedder, make_embedder
from ragline.embed.models import is_bundled
from ragline.errors import EmptyIndexError
from ragline.store import make_store
from ragline.store.base import IndexInfo, VectorStore

if TYPE_CHECKING:
    from ragline.agent import Agent
    from ragline.chunk import Chunker
    from ragline.generate.base import Generator
    from ragline.retrieve import Retriever


class Components:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @cached_property
    def embedder(self) -> Embedder:
        return make_embedder(self.settings.embedding)

    @cached_property
    def ingest_model(self) -> tuple[Embedder, int]:
        """The model the in-process ingest embeds with, and its concurrent calls (``ingest.parallel.ingest_model``).

        Kept for the life of the components, so repeated ingests (``--watch``) load it once.
        """
        from ragline.ingest.parallel import ingest_model

        return ingest_model(self.settings.embedding, self.settings.ingest.embed_workers, self.embedder)

    @property
    def model_id(self) -> str:
        """The embedding model's identity recorded in the index (backends of one model share it)."""
        m = self.settings.embedding.model
        return f"sentence-transformers/{BUNDLED_EMBEDDING_MODEL}" if is_bundled(m) else m

    def index_info(self) -> IndexInfo:
        return IndexInfo(model=self.model_id, dimension=self.embedder.dimension)

    @cached_property
    def store(self) -> VectorStore:
        return make_store(self.settings.qdrant, self.settings.data_dir)

    def open_for_reading(self) -> VectorStore:
        """Open an existing index, checking it was built with this embedding model."""
        if self.store.info() is None:
            raise EmptyIndexError(f"no index in {self.settings.data_dir.resolve()}: run `ragline ingest PATH` first")
        self.store.open(self.index_info())
        return self.store

    @cached_property
    def chunker(self) -> Chunker:
        from ragline.chunk import make_chunker

        return make_chunker(self.settings.chunk, lambda: self.embedder)

    @cached_property
    def generator(self) -> Generator:
        from ragline.generate import make_generator

        return make_generator(self.settings.llm)

    @cached_property
    def retriever(self) -> Retriever:
        from ragline.retrieve import Retriever

        return Retriever(self.store, self.embedder, self.settings.retrieval)

    @cached_property
    def agent(self) -> Agent:
        from ragline.agent import Agent

        return Agent(self.retriever, self.generator, self.settings.llm, self.settings.answer, self.embedder)

    def close(self) -> None:
        if "store" in self.__dict__:
            self.store.close()
