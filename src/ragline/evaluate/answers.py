"""Evaluation of answers: are the citations valid, is the answer grounded in what it cites, is it good?

For each question the agent answers with numbered blocks; then

* citation validity: every ``[n]`` in the answer names a block that was given (1.0 or 0.0 per answer);
* groundedness: the share of answer sentences supported by the blocks they cite (a sentence without its
  own marker is checked against every block the answer cites). Support is judged by embedding similarity
  (the best-matching window of the evidence at or above ``threshold``), or by an LLM judge;
* quality (only with a reference answer): an LLM judge's score from 1 to 5.

The judge is the configured generator: any OpenAI-compatible endpoint, or the embedded model.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from ragline.answer.check import FENCE, code_blocks, markers
from ragline.embed.base import Embedder
from ragline.errors import GenerationError
from ragline.evaluate.datasets import Question
from ragline.evaluate.metrics import mean
from ragline.evaluate.references import reference_scores, summarise_references
from ragline.generate.base import Generator
from ragline.records import Answer, Citation
from ragline.rerank import windows

log = logging.getLogger(__name__)

Judge = Literal["embedding", "llm"]
_MARKER = re.compile(r"\[\s*(\d+(?:\s*,\s*\d+)*)\s*\]")
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
_MIN_SENTENCE_CHARS = 12  # "See [1]." and list bullets are not claims


# Every block number a text cites outside its code, valid or not, first appearance first: the same reading
# as the grounding check's, so evaluation and the answer's own check count citations alike.
cited = markers


def citation_validity(answer: str, n_blocks: int) -> float:
    """1.0 when every [n] in ``answer`` is between 1 and ``n_blocks`` (also when it cites nothing)."""
    return 1.0 if all(1 <= n <= n_blocks for n in cited(answer)) else 0.0


def sentences(answer: str) -> list[str]:
    """The answer's claims: its prose sentences (long enough once markers are removed), then each fenced
    code block whole (a listing is one claim: the code is in the cited text or it is not)."""
    out = []
    for s in _SENTENCE.split(FENCE.sub("\n", answer)):
        s = s.strip()
        if len(_MARKER.sub("", s).strip(" -*•:")) >= _MIN_SENTENCE_CHARS:
            out.append(s)
    return out + [f"```\n{code}\n```" for code in code_blocks(answer)]


def _squeezed(text: str) -> str:
    return " ".join(text.split())


def evidence(sentence: str, answer: str, citations: Sequence[Citation]) -> list[str]:
    """Texts of the blocks a sentence cites, or of every block the answer cites when it cites none."""
    by_n = {c.n: c.hit.chunk.text for c in citations}
    own = [n for n in cited(sentence) if n in by_n]
    return [by_n[n] for n in (own or [n for n in cited(answer) if n in by_n])]


@dataclass(slots=True)
class EmbeddingSupport:
    """A sentence is supported when some window of its evidence is at least ``threshold`` similar."""

    embedder: Embedder
    threshold: float = 0.6

    def __call__(self, sentence: str, blocks: Sequence[str]) -> bool:
        if sentence.startswith("```"):  # code: supported when the cited text holds it, line for line
            code = _squeezed(sentence.strip("`\n"))
            return any(code in _squeezed(b) for b in blocks)
        pieces = [w for b in blocks for w in (windows(b, 2) or [b])]
        if not pieces:
            return False
        claim = _MARKER.sub("", sentence).strip()
        sims = self.embedder.embed_documents(pieces) @ self.embedder.embed_documents([claim])[0]
        return bool(np.max(sims) >= self.threshold)


SUPPORT_PROMPT = (
    "Context:\n{context}\n\nStatement: {sentence}\n\n"
    "Is the statement supported by the context? Reply with one word: yes or no."
)
# The judge's rubric: correctness and use to the asker, against the reference (docs/evaluation.md).
QUALITY_PROMPT = (
    "You grade an answer to a question about a software product's documentation, against a reference answer "
    "written from the page that answers it. You do not know who wrote the answer.\n"
    "Score correctness and usefulness to the asker, as an expert in the product:\n"
    "5 = correct and answers the question directly; the asker could act on it.\n"
    "4 = correct and relevant, but misses a secondary point of the reference or is padded with loose text.\n"
    "3 = gets the main idea but leaves out something needed, or includes a misleading statement.\n"
    "2 = mostly does not answer: related text that does not address the question, or a wrong main claim.\n"
    "1 = wrong, off-topic, empty, or a refusal although the reference shows the documentation answers.\n"
    "When the reference says the documentation does not answer, an answer saying so plainly gets 5 and an "
    "invented answer gets 1. Citation markers and formatting are neither good nor bad; length earns nothing.\n\n"
    "Question: {question}\n\nReference answer: {reference}\n\nAnswer to grade: {answer}\n\n"
    "Reply with the score (1-5) only."
)


@dataclass(slots=True)
class LLMSupport:
    """Asks the judge model whether the evidence supports the sentence."""

    judge: Generator
    max_context_chars: int = 6000

    def __call__(self, sentence: str, blocks: Sequence[str]) -> bool:
        if not blocks:
            return False
        context = "\n\n".join(blocks)[: self.max_context_chars]
        reply = _ask(self.judge, SUPPORT_PROMPT.format(context=context, sentence=_MARKER.sub("", sentence)))
        return reply.strip().lower().startswith("yes")


def quality(judge: Generator, question: str, reference: str, answer: str) -> int | None:
    """The judge's 1-5 score of ``answer`` against ``reference``; None when it gives no number."""
    reply = _ask(judge, QUALITY_PROMPT.format(question=question, reference=reference, answer=answer))
    match = re.search(r"[1-5]", reply)
    return int(match.group()) if match else None


def _ask(judge: Generator, prompt: str) -> str:
    messages = [{"role": "user", "content": prompt}]
    return judge.generate(messages, max_tokens=8, temperature=0.0).text


def repeated_sentences(answer: str) -> int:
    """How many of the answer's sentences say again, word for word, what an earlier one said."""
    seen: set[str] = set()
    count = 0
    for s in sentences(answer):
        if s.startswith("```"):
            continue  # a listing may repeat a line (two print calls): that is code, not a repeated claim
        key = " ".join(_MARKER.sub("", s).lower().split()).strip(" .")
        count += key in seen
        seen.add(key)
    return count


def relevance(embedder: Embedder, question: str, answer: str) -> float:
    """Cosine between the question and the answer's text (markers and code fences left out)."""
    text = _MARKER.sub("", answer.replace("```", "")).strip()
    if not text:
        return 0.0
    vectors = embedder.embed_documents([question, text[:2000]])
    return round(float(vectors[0] @ vectors[1]), 4)


def score_answer(
    question: Question,
    answer: Answer,
    support: Callable[[str, Sequence[str]], bool],
    judge: Generator | None,
    key: Callable[[Any], str] | None = None,
    embedder: Embedder | None = None,
) -> dict[str, Any]:
    """One question's answer, its citations and its scores."""
    claims = sentences(answer.answer)
    supported = [support(s, evidence(s, answer.answer, answer.citations)) for s in claims]
    row: dict[str, Any] = {
        "qid": question.qid,
        "question": question.text,
        "answer": answer.answer,
        "citations": [{"n": c.n, "source": c.hit.chunk.url, "title": c.hit.chunk.title} for c in answer.citations],
        "cited": cited(answer.answer),
        "citation_validity": citation_validity(answer.answer, len(answer.citations)),
        "cites_any": bool(cited(answer.answer)),
        "sentences": len(claims),
        "supported": sum(supported),
        "groundedness": (sum(supported) / len(claims)) if claims else 0.0,
        "repeated": repeated_sentences(answer.answer),
        "words": len(answer.answer.split()),
        "mode": answer.mode,
        "grounded": answer.grounded,
        "fallback": answer.fallback,
        "first_token": round(answer.timings.get("first_token", answer.timings.get("total", 0.0)), 3),
        # what a streaming reader sees first: the draft (auto mode), else the answer's first piece
        "first_words": round(answer.timings.get("draft", answer.timings.get("first_token", 0.0)), 3),
        "seconds": round(answer.timings.get("total", 0.0), 3),
    }
    if embedder is not None:
        row["relevance"] = relevance(embedder, question.text, answer.answer)
    if key is not None and question.relevant:
        row["relevant_retrieved"] = any(question.relevant.get(key(c.hit.chunk), 0) > 0 for c in answer.citations)
    if question.reference:
        row["reference_scores"] = reference_scores(
            answer.answer, question.reference, question.extra.get("key_points", ())
        )
    if question.reference and judge is not None:
        try:
            row["quality"] = quality(judge, question.text, question.reference, answer.answer)
        except GenerationError as e:
            log.warning("quality judge failed on %s: %s", question.qid, e)
            row["quality"] = None
    return row


def summarise(rows: Sequence[dict[str, Any]]) -> dict[str, float]:
    out = {
        "citation_validity": mean([r["citation_validity"] for r in rows]),
        "cites_any": mean([float(r["cites_any"]) for r in rows]),
        "groundedness": mean([r["groundedness"] for r in rows]),
        "answers_repeating": mean([float(r.get("repeated", 0) > 0) for r in rows]),
        "words": mean([float(r.get("words", 0)) for r in rows]),
        "grounded_check": mean([float(r.get("grounded", False)) for r in rows]),
        "fell_back": mean([float(bool(r.get("fallback"))) for r in rows]),
        "seconds_per_answer": mean([r["seconds"] for r in rows]),
        "first_words_p50": _median([r.get("first_words", r.get("first_token", r["seconds"])) for r in rows]),
        "first_token_p50": _median([r.get("first_token", r["seconds"]) for r in rows]),
        "total_p50": _median([r["seconds"] for r in rows]),
    }
    if any("relevance" in r for r in rows):
        out["relevance"] = mean([r["relevance"] for r in rows if "relevance" in r])
    if any("relevant_retrieved" in r for r in rows):
        out["relevant_retrieved"] = mean([float(r.get("relevant_retrieved", False)) for r in rows])
    out.update(summarise_references(rows))
    scores = [r["quality"] for r in rows if r.get("quality") is not None]
    if any("quality" in r for r in rows):
        out["quality"] = mean(scores)
        out["quality_scored"] = float(len(scores))
    return {k: round(v, 4) for k, v in out.items()}


def _median(values: Sequence[float]) -> float:
    return float(np.median(values)) if len(values) else 0.0


def evaluate_answers(
    questions: Sequence[Question],
    ask: Callable[[str], Answer],
    support: Callable[[str, Sequence[str]], bool],
    judge: Generator | None,
    key: Callable[[Any], str] | None = None,
    progress: Callable[[dict[str, Any]], None] | None = None,
    embedder: Embedder | None = None,
) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """Answer and score every question; the per-question rows and their means."""
    rows = []
    t0 = time.perf_counter()
    for q in questions:
        row = score_answer(q, ask(q.text), support, judge, key, embedder)
        rows.append(row)
        if progress:
            progress(row)
    log.info("%d answers scored in %.0f s", len(rows), time.perf_counter() - t0)
    return rows, summarise(rows)
