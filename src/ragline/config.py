"""One settings tree, built once at the edge (CLI, server) and passed down.

Sources, strongest first: explicit arguments, ``RAGLINE_*`` environment variables (nested with
``__``, e.g. ``RAGLINE_LLM__BASE_URL``), ``ragline.toml`` in the working directory (or the file
named by ``RAGLINE_CONFIG``), then the defaults below.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

BUNDLED_EMBEDDING_MODEL = "all-MiniLM-L6-v2"
BUNDLED_LLM = "smollm2-135m-instruct"


class ParseSettings(BaseModel):
    html_selector: str | None = None  # CSS selector of the content; default: <main>/<article>
    url_template: str | None = None  # e.g. https://docs.ray.io/en/master/{path_noext}.html
    max_file_bytes: int = 20_000_000
    notebook_output_chars: int = 500  # notebook cell outputs are cut to this many characters


class ChunkSettings(BaseModel):
    unit: Literal["tokens", "chars"] = "tokens"
    size: int = Field(default=200, ge=16)  # in ``unit``; tokens fit MiniLM's 256-token window
    overlap: int = Field(default=30, ge=0)


class EmbeddingSettings(BaseModel):
    backend: Literal["sentence-transformers", "onnx"] = "sentence-transformers"
    model: str = BUNDLED_EMBEDDING_MODEL  # any sentence-transformers name or path
    device: str = "cpu"
    batch_size: int = Field(default=32, ge=1)
    normalize: bool = True
    query_prefix: str = ""
    document_prefix: str = ""
    threads: int | None = None  # torch/onnxruntime threads; None = library default


class QdrantSettings(BaseModel):
    url: str | None = None  # set to use a Qdrant server instead of the embedded engine
    api_key: str | None = None
    path: str | None = None  # qdrant-client local mode (tests, small setups)
    collection: str = "ragline"
    timeout: float = 30.0


class RetrievalSettings(BaseModel):
    k: int = Field(default=5, ge=1, le=100)
    score_threshold: float | None = None


class LLMSettings(BaseModel):
    backend: Literal["llama-cpp", "openai"] = "llama-cpp"
    # llama-cpp: path to a GGUF file (default: the bundled SmolLM2-135M-Instruct)
    model_path: str | None = None
    # openai: any OpenAI-compatible endpoint (OpenAI, vLLM, Ollama, llama.cpp server)
    base_url: str | None = None
    api_key: str | None = None
    model: str = BUNDLED_LLM
    context_window: int = 4096
    max_tokens: int = Field(default=256, ge=1)
    temperature: float = 0.1
    # Small local models loop without it; OpenAI-compatible servers get it only when set above 1.
    repeat_penalty: float = 1.15
    timeout: float = 60.0
    max_retries: int = 2
    threads: int | None = None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="RAGLINE_",
        env_nested_delimiter="__",
        extra="ignore",
    )

    data_dir: Path = Path(".ragline")
    parse: ParseSettings = ParseSettings()
    chunk: ChunkSettings = ChunkSettings()
    embedding: EmbeddingSettings = EmbeddingSettings()
    qdrant: QdrantSettings = QdrantSettings()
    retrieval: RetrievalSettings = RetrievalSettings()
    llm: LLMSettings = LLMSettings()

    # Short forms documented for the common case (RAGLINE_QDRANT_URL, RAGLINE_QDRANT_API_KEY).
    qdrant_url: str | None = None
    qdrant_api_key: str | None = None

    def model_post_init(self, __context: Any) -> None:
        if self.qdrant_url and not self.qdrant.url:
            self.qdrant.url = self.qdrant_url
        if self.qdrant_api_key and not self.qdrant.api_key:
            self.qdrant.api_key = self.qdrant_api_key

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = Path(os.environ.get("RAGLINE_CONFIG", "ragline.toml"))
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if toml.is_file():
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml))
        return tuple(sources)

    @property
    def index_dir(self) -> Path:
        return self.data_dir / "index"


def load_settings(**overrides: Any) -> Settings:
    """Build the settings tree; ``overrides`` win over env and file (None values are ignored)."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})
