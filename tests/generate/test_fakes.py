"""The scripted generator the plumbing tests use passes the contract every real backend passes."""

from __future__ import annotations

import pytest
from fakes import ScriptedGenerator

from ragline.errors import LLMUnavailableError
from ragline.generate import Generator
from ragline.generate.base import Delta
from ragline.records import Usage

from .contract import MESSAGES, GeneratorContract


class TestScriptedGeneratorContract(GeneratorContract):
    @pytest.fixture()
    def generator(self) -> Generator:
        return ScriptedGenerator()


def test_pieces_are_streamed_as_scripted_with_the_reported_usage() -> None:
    model = ScriptedGenerator(["one ", "one ", "two"], usage=Usage(999, 999))
    deltas = list(model.stream(MESSAGES, max_tokens=2, temperature=0.0))
    assert deltas == [Delta("one "), Delta("one "), Delta("", usage=Usage(999, 999))]
    assert model.sent == [MESSAGES]


def test_a_failing_model_fails_every_call() -> None:
    model = ScriptedGenerator(fail=LLMUnavailableError("down"))
    for call in (model.check, lambda: model.generate(MESSAGES, max_tokens=4, temperature=0.0)):
        with pytest.raises(LLMUnavailableError):
            call()
