"""A follow-up question made standalone, so retrieval sees what "it" refers to.

A capable model rewrites it; otherwise (the bundled model, or a model that fails) the recent user turns are
put in front of a question that leans on them: one with a pronoun or too few words of its own to search by.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

from ragline.answer.evidence import terms
from ragline.errors import RaglineError
from ragline.generate.base import Generator, Message

log = logging.getLogger(__name__)

_LEANING = re.compile(
    r"\b(it|its|this|that|these|those|they|them|their|one|ones|same|above|previous|former|latter|there|"
    r"he|she|him|her|also|too|instead|else|more|again)\b",
    re.IGNORECASE,
)
MIN_OWN_TERMS = 3  # a question with fewer content words of its own leans on the conversation
RECENT_TURNS = 2
MAX_QUESTION_CHARS = 600

REWRITE_PROMPT = (
    "Rewrite the last question of this conversation as one standalone question that names what it refers to. "
    "Reply with the question only.\n\n{turns}\n\nLast question: {question}"
)


def leans_on_history(question: str) -> bool:
    return bool(_LEANING.search(question)) or len(terms(question)) < MIN_OWN_TERMS


def from_turns(question: str, history: Sequence[Message]) -> str:
    """The recent user turns, then the question, when the question leans on them; the question otherwise."""
    users = [m.get("content", "").strip() for m in history if m.get("role") == "user" and m.get("content")]
    if not users or not leans_on_history(question):
        return question
    joined = " ".join([*users[-RECENT_TURNS:], question.strip()])
    return joined[-MAX_QUESTION_CHARS:]


def rewrite(question: str, history: Sequence[Message], generator: Generator) -> str:
    """The model's standalone form of ``question``; the turn-based form when the model fails or rambles."""
    turns = "\n".join(f"{m.get('role', 'user')}: {' '.join(m.get('content', '').split())[:400]}" for m in history[-4:])
    messages = [{"role": "user", "content": REWRITE_PROMPT.format(turns=turns, question=question.strip())}]
    try:
        text = generator.generate(messages, max_tokens=64, temperature=0.0).text.strip()
    except RaglineError as e:
        log.warning("the model could not rewrite the follow-up question: %s", e)
        return from_turns(question, history)
    text = text.splitlines()[0].strip().strip('"') if text else ""
    if not text or len(text) > MAX_QUESTION_CHARS:
        return from_turns(question, history)
    return text


def standalone_question(question: str, history: Sequence[Message], generator: Generator | None = None) -> str:
    """What to search for: ``question`` as it stands alone, given the earlier ``history``.

    With ``generator`` (a capable model) the model rewrites a question that leans on the conversation;
    without, the recent user turns are prepended to it.
    """
    if not history or not any(m.get("role") == "user" for m in history):
        return question
    if generator is not None and leans_on_history(question):
        return rewrite(question, history, generator)
    return from_turns(question, history)


# Earlier chat turns may take at most this share of the context window; the oldest go first.
HISTORY_SHARE = 0.25
_MESSAGE_OVERHEAD = 4  # tokens a chat template adds around one message


def fit_history(history: Sequence[Message], generator: Generator) -> tuple[list[Message], int]:
    """The most recent turns that fit in HISTORY_SHARE of the window, and the tokens they take."""
    budget = int(generator.context_window * HISTORY_SHARE)
    kept: list[Message] = []
    used = 0
    for message in reversed(history):
        cost = generator.count_tokens(message.get("content", "")) + _MESSAGE_OVERHEAD
        if used + cost > budget:
            break
        kept.append(message)
        used += cost
    return kept[::-1], used
