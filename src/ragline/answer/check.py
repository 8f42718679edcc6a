"""The grounding check an answer passes before it is shown as grounded.

An answer passes when it cites at least one block, every [n] names a block that was given, no sentence is
repeated, and every sentence is supported by a block it cites: some unit of that block is similar enough to it
(embedding cosine at or above a threshold, the units' vectors computed once for the evidence), and every API
name it mentions (``code``, dotted.names, calls(), CamelCase, snake_case, @decorators) appears in the cited text.
Code in the answer is held to the same rule for its names.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ragline.answer.evidence import Evidence, stems
from ragline.embed.base import Embedder
from ragline.generate.prompt import is_refusal

_MARKER = re.compile(r"\[\s*(\d+(?:\s*,\s*\d+)*)\s*\]")
FENCE = re.compile(r"```[^\n]*\n(.*?)(?:```|$)", re.DOTALL)
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
_MIN_CLAIM_CHARS = 12  # "See [1]:" and bullets are not claims
_NAMES = re.compile(
    r"`([^`\n]+)`"  # `code`
    r"|(@?[A-Za-z_][\w]*(?:\.[A-Za-z_]\w*)+)"  # dotted.names, @deco.rators
    r"|(@[A-Za-z_]\w*)"  # @decorator
    r"|\b([A-Za-z_]\w*)\("  # calls(
    r"|\b([a-z]+_[a-z_0-9]+)\b"  # snake_case
    r"|\b([A-Z][a-z0-9]+(?:[A-Z][a-z0-9]+)+)\b"  # CamelCase
)


_INLINE_CODE = re.compile(r"`[^`\n]*`")


def prose(text: str) -> str:
    """``text`` without its code (fenced blocks and `inline code`): where markers and claims are read.

    ``x[0]`` or ``[1, 2]`` in code is not a citation, and a listing is not a run of sentences."""
    return _INLINE_CODE.sub(" ", FENCE.sub("\n", text))


def code_blocks(text: str) -> list[str]:
    """The fenced code blocks of ``text``, their content only."""
    return [m.group(1).strip("\n") for m in FENCE.finditer(text) if m.group(1).strip()]


def markers(text: str) -> list[int]:
    """Every block number ``text`` cites outside its code, valid or not, first appearance first."""
    seen: dict[int, None] = {}
    for match in _MARKER.finditer(prose(text)):
        for part in match.group(1).split(","):
            seen.setdefault(int(part), None)
    return list(seen)


def claims(text: str) -> list[str]:
    """The prose sentences of an answer that carry a claim (code blocks left out)."""
    out = []
    for s in _SENTENCE.split(FENCE.sub("\n", text)):
        s = s.strip()
        if len(_MARKER.sub("", s).strip(" -*•:#>")) >= _MIN_CLAIM_CHARS:
            out.append(s)
    return out


def names(text: str) -> set[str]:
    """API-like names in ``text``: what an invented answer gets wrong first."""
    out: set[str] = set()
    for m in _NAMES.finditer(text):
        name = next(g for g in m.groups() if g)
        name = name.strip().rstrip("()").lstrip("@")
        if len(name) > 2:
            out.add(name.lower())
    return out


def _key(text: str) -> str:
    """A sentence as its unit reads: markers out, spaces squeezed, none before punctuation."""
    return re.sub(r"\s+([.!?:;,])", r"\1", " ".join(_MARKER.sub("", text).split()))


def _normal(sentence: str) -> str:
    return " ".join(_MARKER.sub("", sentence).lower().split()).strip(" .")


@dataclass(slots=True)
class Check:
    """What the grounding check found; ``passed`` is what the answer's ``grounded`` field says."""

    passed: bool
    citation_validity: float
    cites_any: bool
    sentences: int
    supported: int
    repeated: int
    unknown_names: list[str] = field(default_factory=list)
    reason: str | None = None
    refused: bool = False  # the answer says the documentation does not answer
    notes: list[str] = field(default_factory=list)  # what a lenient check let pass (uncited sentences, ...)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class Checker:
    embedder: Embedder | None
    threshold: float = 0.6
    lexical_threshold: float = 0.6  # without an embedder: share of the sentence's words found in the block
    # For a capable model's answer: a sentence may rest on any block (citing the wrong one, or none, is a
    # citation note, not an invented answer), names are read in its prose (example code names its own
    # variables), a dotted name is known when its parts are, and up to half the sentences may paraphrase beyond
    # what the embedding can match. A refusal passes as a refusal.
    lenient: bool = False

    def __call__(self, answer: str, evidence: Evidence) -> Check:
        n_blocks = len(evidence.blocks)
        cited = markers(answer)
        valid = all(1 <= n <= n_blocks for n in cited)
        sentences = claims(answer)
        if self.lenient and is_refusal(answer):
            return Check(True, 1.0 if valid else 0.0, bool(cited), len(sentences), 0, 0, refused=True)
        keys = [_normal(s) for s in sentences]
        repeated = len(keys) - len(set(keys))
        known = " ".join([evidence.question, *(b.hit.chunk.text for b in evidence.blocks)]).lower()
        if self.lenient:  # any block may support a sentence; names are read in the prose
            supported = self._supported(sentences, list(range(1, n_blocks + 1)), evidence, own_markers=False)
            own_code = "\n".join(code_blocks(answer)).lower()  # the example's own names, referred to in prose
            unknown = sorted(
                n for n in names(_readable(answer)) if not (_known(n, known) or _example(n) or n in own_code)
            )
        else:
            supported = self._supported(sentences, [n for n in cited if 1 <= n <= n_blocks], evidence)
            unknown = sorted(n for n in names(answer) if n not in known)
        where = "the blocks" if self.lenient else "what they cite"
        notes = ["the answer cites no block"] if self.lenient and not cited else []
        reason = None
        if not cited and not self.lenient:
            reason = "the answer cites no block"
        elif not valid:
            reason = f"the answer cites a block that was not given (blocks 1-{n_blocks})"
        elif repeated > (1 if self.lenient else 0):
            reason = "the answer repeats itself"
        elif unknown:
            reason = f"the answer names what {'the blocks do' if self.lenient else 'the cited text does'} not: " + (
                ", ".join(unknown[:5])
            )
        elif supported * (2 if self.lenient else 1) < len(sentences):
            reason = f"{len(sentences) - supported} of {len(sentences)} sentences are not supported by {where}"
        elif not sentences and not FENCE.search(answer):
            reason = "the answer says nothing"
        return Check(
            passed=reason is None,
            citation_validity=1.0 if valid else 0.0,
            cites_any=bool(cited),
            sentences=len(sentences),
            supported=supported,
            repeated=repeated,
            unknown_names=unknown,
            reason=reason,
            notes=notes,
        )

    def _supported(
        self, sentences: Sequence[str], answer_blocks: list[int], evidence: Evidence, *, own_markers: bool = True
    ) -> int:
        if not sentences:
            return 0
        if own_markers:
            own = [[n for n in markers(s) if 1 <= n <= len(evidence.blocks)] or answer_blocks for s in sentences]
        else:
            own = [answer_blocks for _ in sentences]
        if self.embedder is None:
            return sum(self._lexical(s, blocks, evidence) for s, blocks in zip(sentences, own, strict=True))
        # A sentence quoted from the evidence (every extractive one) has its vector already.
        known = {_key(u.text): u.vector for b in evidence.blocks for u in b.all_units if u.vector is not None}
        keys = [_key(s) for s in sentences]
        todo = [s for s, k in zip(sentences, keys, strict=True) if k not in known]
        fresh = iter(self.embedder.embed_documents([_MARKER.sub("", s).strip() for s in todo]) if todo else [])
        vectors = [known[k] if k in known else next(fresh) for k in keys]
        count = 0
        for vector, blocks, s in zip(vectors, own, sentences, strict=True):
            units = [u for n in blocks for u in evidence.units_of(n) if u.vector is not None]
            if not units:
                count += self._lexical(s, blocks, evidence)
                continue
            best = float(np.max(np.stack([u.vector for u in units if u.vector is not None]) @ vector))
            count += best >= self.threshold
        return count

    def _lexical(self, sentence: str, blocks: list[int], evidence: Evidence) -> bool:
        words = stems(_MARKER.sub("", sentence))
        if not words or not blocks:
            return False
        text = set().union(*(stems(evidence.blocks[n - 1].hit.chunk.text) for n in blocks))
        return len(words & text) / len(words) >= self.lexical_threshold


_FENCE_LINE = re.compile(r"^\s*```")
_SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+(?=\S)")


def add_citations(answer: str, evidence: Evidence, embedder: Embedder | None, threshold: float = 0.6) -> str:
    """``answer`` with a marker after each prose sentence that has none, naming the block that supports it best
    (when one does, at ``threshold``): a model that answers right but cites little still shows its sources."""
    if embedder is None or not evidence.blocks:
        return answer
    lines = answer.split("\n")
    todo: list[tuple[int, int, str]] = []  # (line, sentence index, text)
    split: list[list[str]] = []
    fenced = False
    for i, line in enumerate(lines):
        if _FENCE_LINE.match(line):
            fenced = not fenced
            split.append([line])
            continue
        parts = [line] if fenced else _SENTENCE_SPLIT.split(line)
        split.append(parts)
        if fenced:
            continue
        for j, part in enumerate(parts):
            if not _MARKER.search(part) and len(prose(part).strip(" -*•:#>")) >= _MIN_CLAIM_CHARS:
                todo.append((i, j, part))
    if not todo:
        return answer
    blocks = [[u for u in b.all_units if u.vector is not None] for b in evidence.blocks]
    vectors = embedder.embed_documents([prose(t).strip() for _, _, t in todo])
    for (i, j, text), vector in zip(todo, vectors, strict=True):
        best, where = -1.0, 0
        for n, units in enumerate(blocks, start=1):
            if units:
                score = float(np.max(np.stack([u.vector for u in units if u.vector is not None]) @ vector))
                if score > best:
                    best, where = score, n
        if best >= threshold:
            body = text.rstrip()
            end = body[-1] if body and body[-1] in ".!?:" else ""
            split[i][j] = f"{body[: len(body) - len(end)]} [{where}]{end}"
    return "\n".join(" ".join(parts) for parts in split)


_SPAN = re.compile(r"`([^`\n]+)`")
_PLACEHOLDER = re.compile(r"<[\w.-]+>")


def _readable(answer: str) -> str:
    """A capable model's prose as its names are read: without fenced code, a backticked command or expression
    (``ray start --head``) read word by word rather than as one name, and without ``<placeholders>``."""
    text = FENCE.sub("\n", answer)
    text = _SPAN.sub(lambda m: f" {m.group(1)} " if " " in m.group(1).strip() else m.group(0), text)
    return _PLACEHOLDER.sub(" ", text)


# Names an example makes up or a literal, never an API: ``my_model``, ``your_api_key``, ``another_task``, ``False``.
_EXAMPLE_NAME = re.compile(
    r"^(?:my|your|our|some|another|example|sample|foo|bar|baz)(?:_\w*)?$|^(?:true|false|none|null)$"
)


def _example(name: str) -> bool:
    return bool(_EXAMPLE_NAME.match(name))


def _known(name: str, known: str) -> bool:
    """Whether ``name`` is in ``known``, or, dotted, each of its parts is (``ray.train.report`` where the text
    imports ``train`` from ``ray`` and calls ``train.report``)."""
    if name in known:
        return True
    parts = [p for p in name.split(".") if p]
    return len(parts) > 1 and all(p in known for p in parts)


def check_answer(answer: str, evidence: Evidence, embedder: Embedder | None, threshold: float = 0.6) -> Check:
    """Run the grounding check on ``answer`` against the evidence its [n] markers refer to."""
    return Checker(embedder, threshold)(answer, evidence)
