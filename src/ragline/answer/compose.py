"""Extractive answers: the evidence's best sentences (code whole), de-duplicated, each with its citation.

No model is involved, so the answer takes milliseconds and says only what the documentation says: it is
right whenever retrieval is.
"""

from __future__ import annotations

from dataclasses import dataclass

from ragline.answer.evidence import Evidence, Unit, stems

NO_EVIDENCE = "The documentation in the index does not answer this question."


@dataclass(slots=True)
class Picked:
    n: int
    unit: Unit


def _similar(a: set[str], b: set[str]) -> bool:
    if not a or not b:
        return False
    return len(a & b) / len(a | b) >= 0.7


def pick(
    evidence: Evidence, *, max_sentences: int = 3, max_code: int | None = None, max_chars: int = 1200
) -> list[Picked]:
    """The units an extractive answer is made of, in the order their blocks are shown.

    Retrieval's first block leads with its best sentence when that is close to the best match anywhere (its
    order is measured). Code comes next: a listing counts with the score of the sentence that introduces it
    ("set its URL:"), and the first block's code is preferred. Then the other sentences, down to 0.75 of the
    best score. A sentence that introduces code comes with that code or not at all.
    """
    code_budget = max_code if max_code is not None else (2 if evidence.wants_code else 1)
    units = [(n, u) for n, b in enumerate(evidence.blocks, start=1) for u in b.units]
    if not units:
        return []
    best = max(u.score for _, u in units)
    code_floor = best * (0.65 if evidence.wants_code or evidence.how_to else 0.75)
    picked: list[Picked] = []
    seen: list[set[str]] = []
    chars = 0

    def fresh(n: int, u: Unit) -> bool:
        if any(p.n == n and p.unit.position == u.position for p in picked):
            return False
        s = stems(u.text)
        return not any(_similar(s, o) for o in seen)

    def take(n: int, u: Unit) -> None:
        nonlocal chars
        picked.append(Picked(n, u))
        seen.append(stems(u.text))
        chars += len(u.text)

    def neighbour(n: int, u: Unit, step: int) -> Unit | None:
        block = evidence.blocks[n - 1].all_units
        i = u.position + step
        return block[i] if 0 <= i < len(block) else None

    def intro(n: int, u: Unit) -> Unit | None:
        before = neighbour(n, u, -1)
        return before if before is not None and not before.code and before.text.endswith(":") else None

    def vouched(n: int, u: Unit) -> float:
        i = intro(n, u)
        return max(u.score, i.score - 0.1) if i is not None else u.score

    prose = sorted(((n, u) for n, u in units if not u.code), key=lambda p: -p[1].score)
    lead = next(((n, u) for n, u in prose if n == 1), None)
    if lead is not None and lead[1].score >= best * 0.7 and not lead[1].text.endswith(":"):
        take(*lead)
    code = sorted(((n, u) for n, u in units if u.code and vouched(n, u) >= code_floor), key=lambda p: -vouched(*p))
    first_block = [p for p in code if p[0] == 1]
    for n, u in (first_block[:1] + [p for p in code if p not in first_block[:1]])[:code_budget]:
        if not fresh(n, u):
            continue
        i = intro(n, u)
        if i is not None and fresh(n, i):
            take(n, i)
        take(n, u)
    sentences = sum(not p.unit.code and not p.unit.text.endswith(":") for p in picked)
    for n, u in prose:
        if sentences >= max_sentences or chars >= max_chars or u.score < best * 0.75:
            break
        after = neighbour(n, u, 1)
        if u.text.endswith(":") and after is not None and after.code:
            continue  # an introduction whose code was not chosen
        if fresh(n, u):
            take(n, u)
            sentences += 1
    return picked


def _cite(sentence: str, n: int) -> str:
    """``sentence`` with its marker before the final punctuation: "Set the URL [1]."."""
    end = sentence[-1] if sentence[-1] in ".:!?;" else ""
    body = sentence.rstrip(" .:!?;") if end else sentence  # "equivalent: ::" (reST) gives "equivalent [1]:"
    return f"{body} [{n}]{end}"


def compose(evidence: Evidence, *, min_evidence: float = 0.0, **limits: int) -> str:
    """The extractive answer: blocks in the order of their best unit, units in their order in the block; or
    that the documentation does not answer, when no unit scores ``min_evidence``."""
    if max((b.best for b in evidence.blocks), default=float("-inf")) < min_evidence:
        return NO_EVIDENCE
    picked = pick(evidence, **limits)
    if not picked:
        return NO_EVIDENCE
    order: list[int] = []
    for p in picked:
        if p.n not in order:
            order.append(p.n)
    paragraphs: list[str] = []
    for n in order:
        units = sorted((p.unit for p in picked if p.n == n), key=lambda u: u.position)
        prose: list[str] = []
        cited = False
        for u in units:
            if u.code:
                if prose:
                    paragraphs.append(" ".join(prose))
                    prose = []
                elif not cited:
                    paragraphs.append(f"See [{n}]:")
                paragraphs.append(f"```\n{u.text}\n```")
            else:
                prose.append(_cite(u.text, n))
            cited = True
        if prose:
            paragraphs.append(" ".join(prose))
    return "\n\n".join(paragraphs)
