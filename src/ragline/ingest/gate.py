"""The gate a new index generation passes before it is published.

Two checks, each optional: a minimum number of documents (an empty or broken crawl never replaces a good
index), and questions with their expected source page (the file ``ragline eval retrieval`` reads), asked of
the new generation and of the published one: the new one passes when neither its hit rate (the expected page
among the first k chunks) nor its answered share (questions that retrieve anything at all) is lower than the
published one's by more than the margin.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ragline.components import Components
from ragline.errors import EmptyIndexError
from ragline.store.base import VectorStore


@dataclass(frozen=True, slots=True)
class Gate:
    """What a new generation must pass: ``questions`` (JSON lines of question and source), a ``margin`` on
    hit rate and answered share, and ``min_documents``."""

    questions: Path | None = None
    margin: float = 0.05
    min_documents: int = 0

    @property
    def active(self) -> bool:
        return self.questions is not None or self.min_documents > 0

    def digest(self) -> str | None:
        """Which questions (by content): a generation's recorded scores are comparable only for the same ones."""
        if self.questions is None:
            return None
        return hashlib.sha256(self.questions.read_bytes()).hexdigest()[:16]


@dataclass(slots=True)
class Verdict:
    """The gate's result: the scores of each side, and the reasons it failed (none: it passed)."""

    new: dict[str, Any]
    published: dict[str, Any] | None
    margin: float
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_json(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "new": self.new,
            "published": self.published,
            "margin": self.margin,
            "failures": self.failures,
        }

    def table(self) -> str:
        """The comparison, one line per measure, for the terminal."""
        rows = [f"{'':16s}{'new':>10s}{'published':>12s}"]
        for key in ("documents", "hit_rate", "answered"):
            if key in self.new:
                old = (self.published or {}).get(key)
                rows.append(f"{key:16s}{_fmt(self.new[key]):>10s}{_fmt(old):>12s}")
        return "\n".join(rows)


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def measure(store: VectorStore, components: Components, gate: Gate) -> dict[str, Any]:
    """The gate's measures on ``store``: documents, and with questions, hit rate and answered share."""
    from ragline.evaluate.datasets import load_page_questions
    from ragline.retrieve import Retriever

    scores: dict[str, Any] = {"documents": len({d.doc_id for d in store.documents()})}
    if gate.questions is None:
        return scores
    qset = load_page_questions(gate.questions)
    retriever = Retriever(store, components.embedder, components.settings.retrieval)
    hits = answered = 0
    for q in qset.questions:
        try:
            found = retriever.search(q.text)
        except EmptyIndexError:
            found = []
        answered += bool(found)
        hits += any(q.relevant.get(qset.key(h.chunk), 0) > 0 for h in found)
    n = max(len(qset.questions), 1)
    scores.update(
        questions=len(qset.questions),
        hit_rate=round(hits / n, 4),
        answered=round(answered / n, 4),
        digest=gate.digest(),
    )
    return scores


def judge(gate: Gate, new: dict[str, Any], published: dict[str, Any] | None) -> Verdict:
    """Compare the new generation's measures with the published one's (None: nothing published to beat)."""
    verdict = Verdict(new, published, gate.margin)
    if new["documents"] < gate.min_documents:
        verdict.failures.append(f"{new['documents']} documents, fewer than the {gate.min_documents} required")
    if gate.questions is not None and published is not None and published.get("digest") == new.get("digest"):
        for key, name in (("hit_rate", "hit rate"), ("answered", "answered share")):
            if new[key] < published[key] - gate.margin:
                verdict.failures.append(
                    f"{name} {new[key]:.3f} is below the published generation's {published[key]:.3f} "
                    f"by more than {gate.margin:g}"
                )
    return verdict
