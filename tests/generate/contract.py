"""What every Generator backend must do, run against each real backend (the VectorStore suite's way).

A backend's test module subclasses ``GeneratorContract`` and provides a ``generator`` fixture.
"""

from __future__ import annotations

import pytest

from ragline.errors import GenerationError
from ragline.generate import Generator
from ragline.generate.base import Message

MAX_TOKENS = 32
MESSAGES: list[Message] = [
    {"role": "system", "content": "Answer only from the context. Cite it as [1]."},
    {
        "role": "user",
        "content": "[1] Ray Serve - Scaling\nA deployment scales with num_replicas; the default is 1.\n\n"
        "Question: How do I scale a Ray Serve deployment?",
    },
]


class GeneratorContract:
    def test_is_a_generator_with_a_window_and_a_name(self, generator: Generator) -> None:
        assert isinstance(generator, Generator)
        assert generator.context_window >= 512
        assert ":" in generator.name and "://" not in generator.name  # "backend:model", never an endpoint

    def test_counts_tokens(self, generator: Generator) -> None:
        assert generator.count_tokens("") == 0
        assert 1 <= generator.count_tokens("hello") < generator.count_tokens("hello " * 50)

    def test_generates_within_max_tokens(self, generator: Generator) -> None:
        out = generator.generate(MESSAGES, max_tokens=MAX_TOKENS, temperature=0.0)
        assert out.text.strip()
        assert out.usage.prompt_tokens > 20
        assert 0 < out.usage.completion_tokens <= MAX_TOKENS

    def test_streams_pieces_then_usage_and_matches_generate(self, generator: Generator) -> None:
        deltas = list(generator.stream(MESSAGES, max_tokens=MAX_TOKENS, temperature=0.0))
        text = "".join(d.text for d in deltas)
        assert len([d for d in deltas if d.text]) > 1  # really streamed, not one blob
        usage = deltas[-1].usage
        assert usage is not None and all(d.usage is None for d in deltas[:-1])
        assert 0 < usage.completion_tokens <= MAX_TOKENS + 2
        assert text == generator.generate(MESSAGES, max_tokens=MAX_TOKENS, temperature=0.0).text  # greedy

    def test_an_abandoned_stream_leaves_the_backend_usable(self, generator: Generator) -> None:
        stream = generator.stream(MESSAGES, max_tokens=MAX_TOKENS, temperature=0.0)
        next(iter(stream))
        close = getattr(stream, "close", None)
        if close is not None:
            close()
        out = generator.generate([{"role": "user", "content": "Say hi."}], max_tokens=4, temperature=0.0)
        assert out.usage.completion_tokens > 0

    def test_a_prompt_over_the_window_is_a_generation_error(self, generator: Generator) -> None:
        long = "lorem ipsum " * (generator.context_window + 500)
        with pytest.raises(GenerationError):
            generator.generate([{"role": "user", "content": long}], max_tokens=8, temperature=0.0)

    def test_check_passes(self, generator: Generator) -> None:
        generator.check()
