"""Language-model backends behind one Generator protocol, plus prompts and token budgets."""

from __future__ import annotations

from collections.abc import Callable

from ragline.config import LLMSettings
from ragline.errors import ConfigError
from ragline.generate.base import Delta, DeltaStream, Generation, Generator, Message
from ragline.generate.prompt import SYSTEM_PROMPT, build_messages, cited_numbers, format_block

__all__ = [
    "GENERATORS",
    "SYSTEM_PROMPT",
    "Delta",
    "DeltaStream",
    "Generation",
    "Generator",
    "Message",
    "build_messages",
    "cited_numbers",
    "format_block",
    "make_generator",
]


def _llama_cpp(settings: LLMSettings) -> Generator:
    from ragline.generate.llama_cpp import LlamaCppGenerator

    return LlamaCppGenerator(settings)


def _openai(settings: LLMSettings) -> Generator:
    from ragline.generate.openai_compat import OPENAI_BASE_URL, OpenAICompatGenerator

    if not settings.base_url:
        if not settings.api_key:
            raise ConfigError(
                "llm.backend 'openai' needs llm.base_url (any OpenAI-compatible endpoint, e.g. "
                "http://127.0.0.1:8081/v1) or llm.api_key for api.openai.com"
            )
        settings = settings.model_copy(update={"base_url": OPENAI_BASE_URL})
    return OpenAICompatGenerator(settings)


# Backends import their heavy dependencies only when built.
GENERATORS: dict[str, Callable[[LLMSettings], Generator]] = {
    "llama-cpp": _llama_cpp,
    "openai": _openai,
}


def make_generator(settings: LLMSettings) -> Generator:
    """The generator named by ``settings.backend``; cheap: the model loads in ``warm_up``."""
    try:
        factory = GENERATORS[settings.backend]
    except KeyError:
        known = ", ".join(sorted(GENERATORS))
        raise ConfigError(f"unknown llm.backend {settings.backend!r} (known: {known})") from None
    return factory(settings)
