"""Follow-up questions made standalone for retrieval."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from ragline.answer.conversation import leans_on_history, standalone_question
from ragline.errors import LLMUnavailableError
from ragline.generate.base import Generation
from ragline.records import Usage

HISTORY = [
    {"role": "user", "content": "What does RunnablePassthrough do?"},
    {"role": "assistant", "content": "It passes inputs through unchanged [1]."},
]


class _Scripted:
    """A generator that answers with a fixed text (plumbing only: the real model is tested end to end)."""

    name = "scripted"

    def __init__(self, text: str | None) -> None:
        self.text = text
        self.sent: list[Sequence[Any]] = []

    def generate(self, messages: Sequence[Any], **_: Any) -> Generation:
        self.sent.append(messages)
        if self.text is None:
            raise LLMUnavailableError("down")
        return Generation(text=self.text, usage=Usage())

    def stream(self, messages: Sequence[Any], **_: Any) -> Iterator[Any]:  # pragma: no cover
        raise NotImplementedError


def test_which_questions_lean_on_the_conversation() -> None:
    assert leans_on_history("Show me a code example of it.")
    assert leans_on_history("And on GPUs?")
    assert not leans_on_history("How do I configure the Qdrant collection name?")


def test_without_a_model_the_recent_user_turns_come_first() -> None:
    q = standalone_question("Show me a code example of it.", HISTORY)
    assert q == "What does RunnablePassthrough do? Show me a code example of it."
    assert standalone_question("How do I configure the Qdrant collection name?", HISTORY).startswith("How do I")
    assert standalone_question("Show me it.", []) == "Show me it."


def test_a_model_rewrites_and_a_failing_model_falls_back_to_the_turns() -> None:
    model = _Scripted('"Show a code example of RunnablePassthrough."\nextra line')
    assert standalone_question("Show me a code example of it.", HISTORY, model) == (
        "Show a code example of RunnablePassthrough."
    )
    assert "RunnablePassthrough do?" in str(model.sent[0])
    down = _Scripted(None)
    assert standalone_question("Show me a code example of it.", HISTORY, down).startswith(
        "What does RunnablePassthrough"
    )
