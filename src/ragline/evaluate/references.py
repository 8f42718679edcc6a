"""Answers scored against reference answers: token F1, key points covered, refusals right and wrong.

Cheap and automatic: a guide between judged runs, not a verdict (a judge reading the rubric is, see
:func:`judge_score`). A reference that begins "The documentation does not answer" marks a question the
documentation leaves open; an answer to it should say so, and an answer to any other question should not.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

from ragline.generate.prompt import is_hedged, is_refusal

_TOKEN = re.compile(r"[a-z0-9_]+")
_MARKER = re.compile(r"\[\s*\d+(?:\s*,\s*\d+)*\s*\]")
_CODE_NAME = re.compile(r"[A-Za-z_][\w.]*")
_COMMON = frozenset(
    """a an the of to in on for and or is are be by with as at it this that from how what when which you your can
    use used using do does not if into per its their all any each only also then than via will may must""".split()  # noqa: SIM905
)
NOT_ANSWERED = re.compile(r"^\W*the documentation does not (?:answer|cover|say)", re.IGNORECASE)


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(_MARKER.sub(" ", text or "").lower())


def token_f1(answer: str, reference: str) -> float:
    """Harmonic mean of the shares of the answer's and the reference's words that the other holds."""
    a, r = tokens(answer), tokens(reference)
    common = sum((Counter(a) & Counter(r)).values())
    if not common:
        return 0.0
    precision, recall = common / len(a), common / len(r)
    return 2 * precision * recall / (precision + recall)


def point_terms(point: str) -> set[str]:
    """What shows that a key point is covered: its API-like names and its rarer words."""
    names = {
        t.lower().rstrip(".")
        for t in _CODE_NAME.findall(point)
        if "_" in t or "." in t.rstrip(".") or any(c.isupper() for c in t[1:])
    }
    words = {w for w in tokens(point) if w not in _COMMON and len(w) > 3}
    return names | words


def key_point_recall(answer: str, points: Sequence[str]) -> float | None:
    """The mean share of each key point's terms that the answer contains; None without key points."""
    if not points:
        return None
    text = (answer or "").lower()
    words = set(tokens(answer))
    shares = []
    for point in points:
        terms = point_terms(point)
        shares.append(sum(t in words or t in text for t in terms) / len(terms) if terms else 0.0)
    return sum(shares) / len(shares)


def reference_scores(answer: str, reference: str, key_points: Sequence[str] = ()) -> dict[str, Any]:
    """One answer's scores against its reference answer. A refusal followed by the closest passages (a model's
    refusal over close evidence, ragline.generate.prompt.HEDGE) counts as a refusal: it says the documentation does
    not answer, right or wrong, whatever the passages say."""
    open_question = bool(NOT_ANSWERED.match(reference))
    hedged = is_hedged(answer)
    refused = is_refusal(answer) or hedged
    return {
        "token_f1": round(token_f1(answer, reference), 4),
        "key_points": None if (kp := key_point_recall(answer, key_points)) is None else round(kp, 4),
        "refused": refused,
        "hedged": hedged,
        "wrong_refusal": refused and not open_question,
        "missed_refusal": open_question and not refused,
        "unanswerable": open_question,
    }


def summarise_references(rows: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Means over the rows that carry reference scores; refusals as counts."""
    scored = [r["reference_scores"] for r in rows if r.get("reference_scores")]
    if not scored:
        return {}
    points = [s["key_points"] for s in scored if s["key_points"] is not None]
    return {
        "token_f1": round(sum(s["token_f1"] for s in scored) / len(scored), 4),
        "key_points": round(sum(points) / len(points), 4) if points else 0.0,
        "wrong_refusals": float(sum(s["wrong_refusal"] for s in scored)),
        "missed_refusals": float(sum(s["missed_refusal"] for s in scored)),
        "unanswerable": float(sum(s["unanswerable"] for s in scored)),
    }
