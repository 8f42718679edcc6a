"""Follow-up questions made standalone for retrieval."""

from __future__ import annotations

from fakes import ScriptedGenerator

from ragline.answer.conversation import leans_on_history, standalone_question
from ragline.errors import LLMUnavailableError

HISTORY = [
    {"role": "user", "content": "What does RunnablePassthrough do?"},
    {"role": "assistant", "content": "It passes inputs through unchanged [1]."},
]


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
    model = ScriptedGenerator('"Show a code example of RunnablePassthrough."\nextra line')
    assert standalone_question("Show me a code example of it.", HISTORY, model) == (
        "Show a code example of RunnablePassthrough."
    )
    assert "RunnablePassthrough do?" in str(model.sent[0])
    down = ScriptedGenerator(fail=LLMUnavailableError("down"))
    assert standalone_question("Show me a code example of it.", HISTORY, down).startswith(
        "What does RunnablePassthrough"
    )
