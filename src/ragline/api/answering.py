"""What the API adds around the agent's answer path: the hits another process found, and the answer given
when the language model is down and the server falls back to citations.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ragline.records import Answer, Citation, Hit, Usage
from ragline.retrieve import Retriever


class GivenHits(Retriever):
    """A Retriever that returns the hits another process (the retrieval deployment) already found."""

    def __init__(self, hits: Sequence[Hit]) -> None:  # no store or embedder: nothing to search
        self.hits = list(hits)

    def warm_up(self) -> None:
        return None

    def search(self, query: str, k: int | None = None, **options: Any) -> list[Hit]:
        return self.hits


RETRIEVAL_ONLY_NOTICE = (
    "The language model is unavailable, so there is no written answer; these are the passages of the "
    "documentation that best match the question."
)


def retrieval_only(question: str, citations: list[Citation], timings: dict[str, float]) -> Answer:
    """The answer given when the language model is down and the server is set to fall back to citations."""
    return Answer(
        question=question,
        answer=RETRIEVAL_ONLY_NOTICE,
        citations=citations,
        llm="none (retrieval only: the language model is unavailable)",
        timings=timings,
        usage=Usage(),
    )
