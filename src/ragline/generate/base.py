"""The Generator protocol every language-model backend implements."""

from __future__ import annotations

from collections.abc import Generator as _Generator
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from ragline.records import Message, Usage

__all__ = ["Delta", "DeltaStream", "Generation", "Generator", "Message"]


@dataclass(slots=True)
class Delta:
    """One streamed piece of an answer; the last one may carry the usage."""

    text: str
    usage: Usage | None = None


# What the backends' stream() return: an Iterator of Deltas that can also be closed early
# (closing frees the model or the HTTP connection).
DeltaStream = _Generator[Delta, None, None]


@dataclass(slots=True)
class Generation:
    """A whole answer and what it cost."""

    text: str
    usage: Usage


@runtime_checkable
class Generator(Protocol):
    """A chat model: cheap to construct, heavy state loads in ``warm_up``.

    The backends also have a read-only ``capable: bool``: False for a tiny model (the bundled SmolLM2) that
    needs the compact prompt and cannot rewrite follow-ups, True otherwise. It is not a protocol member (fakes
    may lack it): read it with ``getattr(generator, "capable", True)``.
    """

    # e.g. "llama-cpp:SmolLM2-135M-Instruct.Q4_1" (the bundled default), "llama-cpp:qwen2.5-coder-0.5b-instruct"
    # (a named model), "llama-cpp:<GGUF file stem>" (llm.model_path) or "openai:<model>" (never the endpoint URL)
    name: str
    context_window: int  # tokens the model sees at once (prompt + answer)

    def warm_up(self) -> None:
        """Load the model or open the client; idempotent."""

    def count_tokens(self, text: str) -> int:
        """Tokens in ``text``, with the model's own tokenizer when there is one."""

    def generate(self, messages: list[Message], *, max_tokens: int, temperature: float) -> Generation:
        """The whole answer at once."""

    def stream(self, messages: list[Message], *, max_tokens: int, temperature: float) -> Iterator[Delta]:
        """The answer piece by piece; the last Delta carries the usage."""

    def check(self) -> None:
        """Raise LLMUnavailableError when the model or endpoint cannot answer (readiness probes)."""
