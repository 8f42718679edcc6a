"""One settings tree, built once at the edge (CLI, server) and passed down.

Sources, strongest first: explicit arguments, ``RAGLINE_*`` environment variables (nested with
``__``, e.g. ``RAGLINE_LLM__BASE_URL``), ``ragline.toml`` in the working directory (or the file
named by ``RAGLINE_CONFIG``), then the defaults below.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from ragline.api.settings import ServeSettings
from ragline.errors import ConfigError
from ragline.layout import DataLayout
from ragline.observability.settings import ObservabilitySettings
from ragline.records import Mode
from ragline.settings_base import SettingsSection, settings_error

BUNDLED_EMBEDDING_MODEL = "all-MiniLM-L6-v2"
BUNDLED_LLM = "smollm2-135m-instruct"


class ParseSettings(SettingsSection):
    html_selector: str | None = None  # CSS selector of the content; default: <main>/<article>
    url_template: str | None = None  # e.g. https://docs.ray.io/en/master/{path_noext}.html
    # A document's bytes, counting the files it includes (literalinclude, include): over it, it is skipped.
    max_file_bytes: int = 20_000_000
    # Markdown, reStructuredText and text files with a longer line are skipped (the parsers slow down on one).
    max_line_chars: int = Field(default=100_000, ge=1)
    notebook_output_chars: int = 500  # notebook cell outputs are cut to this many characters
    # ``literalinclude`` and ``include`` in rst / MyST pages are read from the page's folder, from the folder
    # being ingested (a path starting with "/"), and from these folders, which mirror that tree (code kept apart
    # from the pages). Only files under those folders are read.
    include_paths: list[Path] = []
    # A link in an ingested folder is read only when it stays inside the folder; True follows links wherever
    # they lead (only for folders you trust: a link to /etc/passwd would be indexed).
    follow_outside_links: bool = False
    # Replace e-mails, phone numbers, IP addresses and secrets with [EMAIL], [PHONE], [IP], [SECRET] in the
    # parsed text, before chunking and embedding (``ragline ingest --redact``); see ragline.privacy.
    redact: bool = False
    redact_kinds: list[Literal["secret", "email", "ip", "phone"]] = ["secret", "email", "ip", "phone"]


class ChunkSettings(SettingsSection):
    unit: Literal["tokens", "chars"] = "tokens"
    size: int = Field(default=200, ge=16)  # in ``unit``; tokens fit MiniLM's 256-token window
    overlap: int = Field(default=30, ge=0)
    # A document that would make more chunks is skipped: a page of links must not outrank real pages by bulk
    # (the largest real document seen, the 530 KB Debian reference PDF, makes 1,101).
    max_chunks: int = Field(default=2000, ge=1)


class EmbeddingSettings(SettingsSection):
    # onnx: the bundled int8 MiniLM on ONNX Runtime (same model id and index as sentence-transformers);
    # with data-parallel ingest it embeds faster here at the same hit rate (bench/ingest.py). It serves
    # only the bundled model, so another model without an explicit backend gets sentence-transformers.
    backend: Literal["sentence-transformers", "onnx"] = "onnx"
    model: str = BUNDLED_EMBEDDING_MODEL  # any sentence-transformers name or path
    device: str = "cpu"
    # Texts per forward pass; None: the backend's choice. onnx: 1, each text alone: nothing is padded and a
    # vector depends on its text only (the dynamically quantized model scales a pass as a whole, so in a
    # batch of 32 a chunk's vector also moved with its companions); here it is also 1.29 times the chunks/s
    # of sorted batches of 32 (bench/ingest.py). sentence-transformers: 32.
    batch_size: int | None = Field(default=None, ge=1)
    normalize: bool = True
    query_prefix: str = ""
    document_prefix: str = ""
    threads: int | None = None  # torch/onnxruntime threads; None = library default
    # onnx: "dynamic" quantizes activations too, so matrix products run in int8 (about twice the speed of
    # the shipped file here, cosine 0.994 to it; bench/ingest.py, bench/eval.py); "weights" runs the shipped
    # file as it is (int8-stored weights, float products). The dynamic model is built once into cache_dir.
    onnx_quantization: Literal["dynamic", "weights"] = "dynamic"
    cache_dir: Path | None = None  # built model files; None = ~/.cache/ragline

    @model_validator(mode="after")
    def _backend_for_model(self) -> EmbeddingSettings:
        bundled = {BUNDLED_EMBEDDING_MODEL, f"sentence-transformers/{BUNDLED_EMBEDDING_MODEL}"}
        if "backend" not in self.model_fields_set and self.model not in bundled:
            self.backend = "sentence-transformers"
        return self


class IngestSettings(SettingsSection):
    """How ``ragline ingest`` runs: in this process, or as a Ray Data pipeline across a cluster."""

    engine: Literal["local", "ray"] = "local"
    # ray: None starts a local Ray bound to 127.0.0.1; "auto" or "ray://host:10001" joins a cluster.
    ray_address: str | None = None
    embed_actors: int = Field(default=1, ge=1)  # ray: embedding actors in the pool
    embed_cpus: float = Field(default=1.0, gt=0)  # ray: CPUs Ray reserves per embedding actor
    num_gpus: float = Field(default=0.0, ge=0)  # ray: GPUs per embedding actor (sentence-transformers on cuda)
    # Chunks per embedding call (run in embedding.batch_size forward passes, sorted by token count inside
    # when a pass holds several) and per write to the index: both engines.
    embed_batch: int = Field(default=256, ge=1)
    # Concurrent one-thread embedding calls per batch (data parallel), for backends that allow it (onnx):
    # local: in this process; ray: in each embedding actor. 0: one per core.
    embed_workers: int = Field(default=0, ge=0)
    parse_ahead: int = Field(default=64, ge=0)  # local: documents a thread reads and parses ahead (0: inline)
    parse_cpus: float = Field(default=1.0, gt=0)  # ray: CPUs per parse / chunk task
    writers: int = Field(default=2, ge=1)  # ray: parallel writer actors, with a Qdrant server only


class CrawlSettings(SettingsSection):
    """How a crawl behaves; every limit is per crawl unless it says otherwise."""

    max_pages: int = Field(default=1000, ge=1)
    max_depth: int = Field(default=20, ge=0)  # link hops from the start URL
    max_bytes: int = Field(default=5_000_000, ge=1)  # per page, after decompression
    concurrency: int = Field(default=8, ge=1, le=256)
    rate_per_host: float = Field(default=10.0, ge=0)  # requests per second to one host; 0: no limit
    timeout: float = Field(default=20.0, gt=0)  # seconds for one whole request, body included
    retries: int = Field(default=3, ge=0)  # on timeouts, connection errors, 429 and 5xx
    backoff: float = Field(default=0.5, ge=0)  # first retry waits about this long, doubling each time
    max_backoff: float = Field(default=60.0, ge=0)  # a Retry-After longer than this fails the page instead
    max_redirects: int = Field(default=5, ge=0)
    include: list[str] = []  # URL globs crawled even outside the start prefix (e.g. https://x.org/api/*)
    exclude: list[str] = []  # URL globs never crawled
    robots: bool = True  # honour robots.txt
    sitemap: bool = True  # seed the crawl from robots.txt's sitemaps or /sitemap.xml
    # Media types read as HTML; any other response is read by the parser its type names (application/pdf,
    # text/markdown...), else by its URL's extension (ragline.sources.kinds).
    content_types: list[str] = ["text/html", "application/xhtml+xml"]
    user_agent: str = "ragline/0.1 (documentation crawler)"


class QdrantSettings(SettingsSection):
    url: str | None = None  # set to use a Qdrant server instead of the embedded engine
    api_key: SecretStr | None = None
    path: str | None = None  # qdrant-client local mode (tests, small setups)
    collection: str = "ragline"
    timeout: float = 30.0
    # Memory layout, applied when an index or collection is created (re-ingest with --recreate to change it).
    # int8: scalar-quantised dense vectors kept in RAM (4x smaller), searched first and rescored with the
    # originals; on_disk_vectors: original dense vectors (and the BM25 index) read from disk through the
    # page cache instead of held in memory; on_disk_payload: payloads (chunk texts) on disk, both engines'
    # own default. docs/scale.md has the measured cost of each at 1M chunks.
    quantization: Literal["none", "int8"] = "none"
    on_disk_vectors: bool = False
    on_disk_payload: bool = True


class RetrievalSettings(SettingsSection):
    """How questions find chunks; every choice here was measured on the Ray and SciFact benchmarks
    (``bench/eval.py``; README, "Evaluation")."""

    k: int = Field(default=5, ge=1, le=100)
    # dense: cosine on the embeddings; bm25: keywords; hybrid: both, fused by reciprocal rank fusion.
    mode: Literal["dense", "bm25", "hybrid"] = "hybrid"
    score_threshold: float | None = None  # a cosine floor (in hybrid: on the dense candidates)
    dense_weight: float = Field(default=1.0, ge=0)
    sparse_weight: float = Field(default=1.0, ge=0)
    rrf_k: int = Field(default=60, ge=1)
    # Per list fused in hybrid mode.
    candidates: int = Field(default=100, ge=1, le=1000)
    # The fused candidates read (with their payloads) for shaping: the per-page cap picks distinct pages among
    # them. 50 ranks the Ray dev questions as 100 does, and reading half the payloads is most of the saving
    # (docs/serving.md, "Inside one query").
    pool: int = Field(default=50, ge=1, le=1000)
    # Rerank stages, in order (see ragline.rerank.RERANKERS): e.g. ["cross-encoder"] with rerank_model set;
    # [] for none. None (the default) chooses by the index: page-level evidence (["page"]) where documents
    # are long enough to hold several chunks each, as documentation pages are; none for short records.
    rerank: list[str] | None = None
    rerank_model: str | None = None  # a sentence-transformers CrossEncoder name or path
    rerank_depth: int = Field(default=50, ge=1, le=1000)  # how many candidates the rerankers reorder
    # Result shaping: collapse near-duplicate chunks, cap chunks per page (None: no cap), merge
    # adjacent chunks of one section into one prompt block.
    dedupe: bool = True
    max_per_page: int | None = Field(default=1, ge=1)
    merge_adjacent: bool = True
    # The first blocks get the next chunks of their page joined on, [2, 1]: two onto the first, one onto the
    # second ([]: none). A section's introduction often ranks first while its example follows it.
    extend_next: list[Annotated[int, Field(ge=0, le=5)]] = Field(default=[2, 1], max_length=20)


class LLMSettings(SettingsSection):
    backend: Literal["llama-cpp", "openai"] = "llama-cpp"
    # llama-cpp: path to a GGUF file; it wins over ``model``
    model_path: str | None = None
    # openai: any OpenAI-compatible endpoint (OpenAI, vLLM, Ollama, llama.cpp server)
    base_url: str | None = None
    api_key: SecretStr | None = None
    # llama-cpp without model_path: a named local model (ragline.generate.models: smollm2-135m-instruct,
    # qwen2.5-coder-0.5b-instruct, qwen2.5-coder-1.5b-instruct; `ragline models` lists them); openai: the
    # endpoint's model name.
    model: str = BUNDLED_LLM
    # Where named models shipped in parts are joined (once); None: $XDG_CACHE_HOME/ragline/models or
    # ~/.cache/ragline/models. Also RAGLINE_MODEL_CACHE.
    model_cache: Path | None = None
    context_window: int = 4096
    max_tokens: int = Field(default=256, ge=1)
    temperature: float = 0.1
    # Small local models loop without it; OpenAI-compatible servers get it only when set above 1.
    repeat_penalty: float = 1.15
    timeout: float = 60.0
    max_retries: int = 2
    threads: int | None = None
    # llama-cpp: flash attention; the first words 4-15% sooner on CPU here, 3 runs (bench/first_token.py compares).
    flash_attn: bool = True


class AnswerSettings(SettingsSection):
    """How answers are made from the retrieved blocks (ragline.answer; docs/answers.md has the measurements)."""

    # extractive: the evidence's best sentences and code, cited, with no model; generative: the model writes
    # from the evidence, checked and flagged; auto: the model writes, and an answer that fails the grounding
    # check (or a model that is down) gives the extractive answer instead. None: extractive with the bundled
    # model (it does not write grounded answers often enough, bench/answers.py), auto with any other model.
    mode: Mode | None = None
    max_sentences: int = Field(default=3, ge=1, le=20)  # extractive: prose sentences in an answer
    evidence_blocks: int = Field(default=4, ge=1, le=20)  # blocks the evidence (and the citations) keep
    evidence_units: int = Field(default=4, ge=1, le=50)  # sentences or code runs kept per block
    support_threshold: float = Field(default=0.6, ge=0, le=1)  # cosine at which a block supports a sentence
    # extractive: below this best evidence score (cosine plus the question's rare words found, see
    # ragline.answer.evidence) the answer says the documentation does not answer. On the Ray dev questions every
    # answerable one scores 0.61 or more (docs/answers.md).
    min_evidence: float = Field(default=0.45, ge=0)
    # What the model reads. sections: the retrieved sections whole, under a prompt that asks for an answer as
    # long as the question needs (capable instruction models: the named Qwen models, any OpenAI-compatible
    # endpoint); compact: a few chosen sentences per block and at most three sentences back (tiny models such
    # as the bundled SmolLM2); auto: by the model. Chosen by judged answers (docs/answers.md).
    prompt: Literal["auto", "sections", "compact"] = "auto"
    # sections: the most prompt tokens the sections may take. A 2-CPU machine reads 35-80 prompt tokens a second
    # with the local Qwen models, so the budget is the wait before the first word; a hosted model can take more.
    context_tokens: int = Field(default=2000, ge=64)
    # sections: how many retrieved blocks a model reads, in retrieval order, when the request sets no k (the
    # answer retrieves this many). Measured on the Ray dev questions, the page that answers is among the first
    # 4 blocks for 52% of them and among the first 8 for 73% (docs/answers.md).
    context_blocks: int = Field(default=8, ge=1, le=20)
    # auto mode: send the extractive answer at once as a draft while the model writes (a `draft` event on the
    # /query stream, a labelled draft on the web page and in `ragline ask` on a terminal), which the model's
    # answer then replaces. The extract takes a fraction of a second; a local model's answer takes 10-25 s on 2 CPUs.
    draft: bool = True
    # How a follow-up becomes a standalone question for retrieval: llm (the model rewrites it), turns (recent
    # user turns put in front of it), auto (llm unless the model is the bundled one).
    condense: Literal["auto", "llm", "turns"] = "auto"
    # Where relative citation sources (``--url-template 'docs/{path}'`` gives docs/guide.md#setup) point when
    # shown: the web page and ``ragline ask`` join them onto this URL, e.g.
    # https://github.com/me/project/blob/main/. None: shown as paths, never as links (against the server they
    # would open its own routes). The API returns sources as ingested either way.
    citation_base_url: str | None = None

    @field_validator("citation_base_url")
    @classmethod
    def _web_base(cls, url: str | None) -> str | None:
        if url is None or not url.strip():
            return None
        url = url.strip()
        if not url.lower().startswith(("http://", "https://")):
            raise ValueError(f"an http(s) URL, not {url!r}")
        return url if url.endswith("/") else url + "/"  # a folder: docs/a.md joins on, not over its last part


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="RAGLINE_",
        env_nested_delimiter="__",
        extra="forbid",
    )

    data_dir: Path = Path(".ragline")
    parse: ParseSettings = ParseSettings()
    chunk: ChunkSettings = ChunkSettings()
    embedding: EmbeddingSettings = EmbeddingSettings()
    qdrant: QdrantSettings = QdrantSettings()
    crawl: CrawlSettings = CrawlSettings()
    ingest: IngestSettings = IngestSettings()
    retrieval: RetrievalSettings = RetrievalSettings()
    llm: LLMSettings = LLMSettings()
    answer: AnswerSettings = AnswerSettings()
    serve: ServeSettings = ServeSettings()
    observability: ObservabilitySettings = ObservabilitySettings()

    # Short forms documented for the common case (RAGLINE_QDRANT_URL, RAGLINE_QDRANT_API_KEY, RAGLINE_MODEL_CACHE).
    qdrant_url: str | None = None
    qdrant_api_key: SecretStr | None = None
    model_cache: Path | None = None

    def model_post_init(self, __context: Any) -> None:
        if self.qdrant_url and not self.qdrant.url:
            self.qdrant.url = self.qdrant_url
        if self.qdrant_api_key and not self.qdrant.api_key:
            self.qdrant.api_key = self.qdrant_api_key
        if self.model_cache and not self.llm.model_cache:
            self.llm.model_cache = self.model_cache

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = config_file()
        sources: list[PydanticBaseSettingsSource] = [init_settings, _EnvSource(settings_cls)]
        if toml is not None:
            try:
                sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml))
            except tomllib.TOMLDecodeError as e:  # its message ends "(at line 1, column 5)"
                raise ConfigError(f"{toml}: not valid TOML: {e}") from e
            except OSError as e:
                raise ConfigError(f"{toml}: cannot be read: {e.strerror}") from e
        return tuple(sources)

    @property
    def layout(self) -> DataLayout:
        return DataLayout(self.data_dir)

    @property
    def index_dir(self) -> Path:
        return self.layout.index


class _EnvSource(EnvSettingsSource):
    """The environment source, naming the variable whose value is not JSON (pydantic-settings names only
    the top-level section, e.g. "serve" for ``RAGLINE_SERVE__API_KEYS``)."""

    def prepare_field_value(self, field_name: str, field: FieldInfo, value: Any, value_is_complex: bool) -> Any:
        try:
            return super().prepare_field_value(field_name, field, value, value_is_complex)
        except ValueError as e:
            raise ConfigError(f"{self._culprit(field_name, field)}: not valid JSON ({e})") from e

    def _culprit(self, field_name: str, field: FieldInfo) -> str:
        top = f"{self.env_prefix}{field_name}".lower()
        nested = top + (self.env_nested_delimiter or "__")
        for name, value in self.env_vars.items():
            if name.lower() == top and value:
                try:
                    self.decode_complex_value(field_name, field, value)
                except ValueError:
                    return name.upper()
            elif name.lower().startswith(nested):
                try:
                    self.explode_env_vars(field_name, field, {name: value})
                except ValueError:
                    return name.upper()
        return f"{nested.upper()}*"


def config_file() -> Path | None:
    """The settings file read: the one ``RAGLINE_CONFIG`` names, else ``ragline.toml`` here if there is one."""
    named = os.environ.get("RAGLINE_CONFIG")
    toml = Path(named or "ragline.toml")
    if named and not toml.is_file():  # a file asked for by name must be there; ragline.toml may be absent
        raise ConfigError(f"RAGLINE_CONFIG names {named!r}, which is not a file")
    return toml if toml.is_file() else None


def load_settings(**overrides: Any) -> Settings:
    """Build the settings tree; ``overrides`` win over env and file (None values are ignored).

    Every mistake is a ``ConfigError`` of one line naming where it is: the option, the environment
    variable or the file, and the key.
    """
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**given)
    except ValidationError as e:
        raise settings_error(e, lambda loc: f"invalid settings: {_where(loc, given)}") from e


def _where(loc: tuple[str, ...], given: dict[str, Any]) -> str:
    """Where a bad value came from, by the sources' precedence: an argument, a variable, then the file."""
    key = ".".join(loc)
    if loc and loc[0] in given:
        return key
    for n in range(len(loc), 0, -1):  # RAGLINE_SERVE__API_KEYS for serve.api_keys.0
        name = "RAGLINE_" + "__".join(loc[:n]).upper()
        if any(var.upper() == name for var in os.environ):
            return name
    toml = config_file()
    if toml is not None:
        node: Any = tomllib.loads(toml.read_text(encoding="utf-8"))  # read once already: it parses
        for part in loc:
            if isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            elif isinstance(node, dict) and part in node:
                node = node[part]
            else:
                break
        else:
            return f"{toml}: {key}"
    return key
