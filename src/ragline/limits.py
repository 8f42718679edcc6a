"""The rules a question must keep, written once: its answer mode, k and its length.

Every way in (the HTTP routes, MCP, the Python API, the CLI, the retriever itself) checks with these, each with
its own bounds; an error names the request field at fault (``param``, as OpenAI's errors do) where there is one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from ragline.errors import BadRequestError
from ragline.records import MODES, Mode, Query

MAX_K = 100  # the most hits one search returns; a server may allow fewer (serve.max_k)


@dataclass(frozen=True, slots=True)
class Bounds:
    """One way in's bounds on a question, and how its errors name the question."""

    max_chars: int
    max_k: int = MAX_K
    question: str = "the query"  # how messages name the question
    param: str | None = None  # the request field holding the question
    setting: str | None = None  # the setting behind ``max_chars``, named in the message when set


def check_query(query: Query, bounds: Bounds) -> None:
    """Raise BadRequestError, with the limit in its message, when ``query`` breaks a rule."""
    check_question(query.question, bounds)
    check_k(query.k, bounds.max_k)
    check_mode(query.options.mode)


def check_question(text: str, bounds: Bounds) -> None:
    if len(text) > bounds.max_chars:
        named = f" ({bounds.setting})" if bounds.setting else ""
        raise BadRequestError(
            f"{bounds.question} is {len(text)} characters long; the limit is {bounds.max_chars}{named}",
            param=bounds.param,
        )
    if not text.strip():
        raise BadRequestError(f"{bounds.question} is empty", param=bounds.param)


def check_k(k: int | None, max_k: int = MAX_K) -> None:
    """``k`` (None: the configured default) between 1 and ``max_k``."""
    if k is not None and not 1 <= k <= max_k:
        raise BadRequestError(f"k must be between 1 and {max_k}, got {k}", param="k")


def check_mode(mode: str | None, name: str = "mode") -> Mode | None:
    """``mode`` as one of MODES (None: the configured default); ``name`` is how the caller calls the option."""
    if mode is not None and mode not in MODES:
        said = f"{', '.join(MODES[:-1])} or {MODES[-1]}"
        raise BadRequestError(f"{name} {mode!r}: {said}", param="mode")
    return cast("Mode | None", mode)
