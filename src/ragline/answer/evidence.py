"""Evidence: the sentences and code of the retrieved blocks that bear on the question.

A block's text is split into units (a prose sentence, or a run of code lines kept whole); each unit is scored
against the question by embedding similarity plus the share of the question's rarer words it contains. The best
units, with the block they came from, are what a small model reads and what an extractive answer is made of.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ragline.embed.base import Embedder
from ragline.generate.fence import aimed_at_model
from ragline.records import Hit

# A sentence ends at . ! ? followed by space and a capital, a quote, a bracket or a backtick; "e.g.", "i.e."
# and "vs." do not end one ("etc." usually does, before a capital).
_SENTENCE_END = re.compile(r"(?<!\b[eE]\.g\.)(?<!\b[iI]\.e\.)(?<!\bvs\.)(?<=[.!?])\s+(?=[A-Z0-9`\"'(\[*])")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CODE_START = re.compile(
    r"^\s*(?:\$ |>>> |\.\.\. |#!|import \w|from \S+ import |def \w|class \w|async def |return |@\w|"
    r"for \w+ in .*:$|if .*:$|with .*:$|[\w.\[\]\"']+\s*[+\-*/]?=\s*\S)"
)
# Shell commands, when the line does not read as a sentence.
_COMMAND = re.compile(r"^\s*(?:pip|export|curl|docker|kubectl|ray|ragline|python|make|git|serve|helm|uv)\s+\S")
_CODE_CHARS = set("=(){}[]<>_;/\\\"'|$#:.`")
STOPWORDS = frozenset(
    """a an and are as at be by can could do does did for from has have how i if in into is it its of on or
    that the their them then there these this those to use used using was what when where which who why
    will with would you your my me we our not no yes should may might shall about between than so such
    also just get set make want need any all each every some more most other show example way ways""".split()  # noqa: SIM905
)
_CODE_QUESTION = re.compile(r"\b(code|example|snippet|sample|show me|syntax|command)\b", re.IGNORECASE)
# "How do I ..." in documentation is answered by prose and code alike.
_HOW_TO = re.compile(r"^\W*how (?:do|can|could|should|would) (?:i|we|you|one)\b|^\W*how to\b", re.IGNORECASE)
# The names a code unit calls or reaches: `x.with_fallbacks(`, `RunnableParallel(`, `.bind(`.
_CALLED = re.compile(r"(?<=\.)[A-Za-z_]\w*|[A-Za-z_]\w*(?=\()")


@dataclass(slots=True)
class Unit:
    """A sentence or a whole run of code lines from one block, with its place in that block."""

    text: str
    code: bool
    position: int
    score: float = 0.0
    vector: np.ndarray | None = None  # the unit's embedding, kept for the grounding check


@dataclass(slots=True)
class EvidenceBlock:
    """A retrieved block and the units of it that bear on the question, in their order in the block."""

    hit: Hit
    units: list[Unit]
    all_units: list[Unit] = field(default_factory=list)

    @property
    def best(self) -> float:
        return max((u.score for u in self.units), default=float("-inf"))

    def text(self) -> str:
        """The chosen units as one compact text: sentences run together, code on its own lines."""
        parts: list[str] = []
        for u in self.units:
            if u.code or (parts and parts[-1].endswith("\n")):
                parts.append(("\n" if parts else "") + u.text + "\n")
            else:
                parts.append((" " if parts else "") + u.text)
        return "".join(parts).strip()


@dataclass(slots=True)
class Evidence:
    """The evidence blocks, numbered 1.. in retrieval order: ``blocks[n - 1]`` is the block cited as [n]."""

    question: str
    blocks: list[EvidenceBlock]
    wants_code: bool = False
    how_to: bool = False

    def units_of(self, n: int) -> list[Unit]:
        """Every unit of block ``n`` (chosen or not): what a sentence citing [n] may rest on."""
        return self.blocks[n - 1].all_units if 1 <= n <= len(self.blocks) else []


_DRAWN = re.compile(r"-{3,}|={3,}|\+-|-\+|->|<-|^\s*[|v^+]\s*$")


def looks_like_diagram(text: str) -> bool:
    """A listing drawn with characters (boxes and arrows): it shows a shape, it does not answer in words."""
    lines = [line for line in text.splitlines() if line.strip()]
    drawn = sum(bool(_DRAWN.search(line)) for line in lines)
    return drawn >= 2 and drawn >= len(lines) / 2


def looks_like_code(line: str) -> bool:
    """A line that reads as code or a shell command rather than prose (the parsers keep code as plain lines)."""
    s = line.rstrip()
    if not s.strip():
        return False
    if s.startswith(("    ", "\t")) or _CODE_START.match(s):
        return True
    stripped = s.strip()
    words = stripped.split()
    if _COMMAND.match(s) and not stripped.endswith((".", ":", "?")) and len(words) < 20:
        return True
    symbols = sum(ch in _CODE_CHARS for ch in stripped)
    if stripped.endswith((".", "?", "!")) and len(words) >= 4 and symbols / len(stripped) < 0.08:
        return False
    if stripped.endswith(("(", "{", "[", ")", "]", "}", ",", ";")) and symbols / len(stripped) > 0.04:
        return True
    return len(stripped) >= 3 and symbols / len(stripped) > 0.12 and len(words) <= 12


def split_units(text: str) -> list[Unit]:
    """``text`` as units: each prose sentence, and each run of code lines whole."""
    units: list[Unit] = []
    prose: list[str] = []
    code: list[str] = []

    def flush_prose() -> None:
        if prose:
            paragraph = " ".join(" ".join(p.split()) for p in prose)
            for sentence in _SENTENCE_END.split(paragraph):
                if sentence.strip():
                    units.append(Unit(sentence.strip(), False, len(units)))
            prose.clear()

    def flush_code() -> None:
        for group in code_groups(code):
            units.append(Unit(group, True, len(units)))
        code.clear()

    lines = text.splitlines()
    kinds = [looks_like_code(line) for line in lines]
    for i, line in enumerate(lines):
        # A "# ..." line next to code is a comment of it (headings never reach a chunk's text as "#").
        if not kinds[i] and line.lstrip().startswith("#"):
            kinds[i] = (i > 0 and kinds[i - 1]) or (i + 1 < len(lines) and kinds[i + 1])
    for line, is_code in zip(lines, kinds, strict=True):
        if not line.strip():
            flush_prose()
            if code:
                code.append("")  # a blank line inside code stays code until prose comes back
            continue
        if is_code:
            flush_prose()
            code.append(line.rstrip())
        else:
            flush_code()
            # The parsers write a paragraph or a list item per line: each line is split on its own.
            flush_prose()
            prose.append(line)
    flush_prose()
    flush_code()
    return units


_LONG_CODE = 12  # lines: a longer listing is split into its steps


def code_groups(lines: list[str]) -> list[str]:
    """A run of code lines as units: whole when short, else in steps.

    A step ends at a blank line or before a comment that follows code, and never inside open brackets, so a
    long notebook cell ("# set up ...", "# now with fallbacks ...") yields the step that answers, not the cell.
    """
    text = "\n".join(lines).strip("\n")
    if not text.strip():
        return []
    if text.count("\n") < _LONG_CODE:
        return [text]
    groups: list[list[str]] = [[]]
    depth = 0
    for line in text.splitlines():
        stripped = line.strip()
        boundary = (
            depth == 0
            and bool(groups[-1])
            and (not stripped or (stripped.startswith("#") and not groups[-1][-1].strip().startswith("#")))
        )
        if boundary and len(groups[-1]) >= 2:
            groups.append([])
        if stripped or groups[-1]:
            groups[-1].append(line)
        depth = max(0, depth + sum(stripped.count(c) for c in "([{") - sum(stripped.count(c) for c in ")]}"))
    out = ["\n".join(g).strip("\n") for g in groups]
    return [g for g in out if g.strip()]


def _parts(word: str) -> list[str]:
    """An identifier's words, lower-cased: ``with_fallbacks`` and ``RunnableParallel`` give two each."""
    return [p.lower() for p in re.split(r"_|(?<=[a-z])(?=[A-Z])", word) if len(p) > 2 and p.lower() not in STOPWORDS]


def terms(text: str) -> set[str]:
    """Lower-cased content words, with identifiers also split at underscores and case changes."""
    out: set[str] = set()
    for word in _WORD.findall(text):
        lower = word.lower()
        if lower not in STOPWORDS and len(lower) > 1:
            out.add(lower)
        out.update(_parts(word))
    return out


def _stem(word: str) -> str:
    for suffix in ("ing", "es", "s", "ed"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def stems(text: str) -> set[str]:
    return {_stem(t) for t in terms(text)}


@dataclass(slots=True)
class Selector:
    """Chooses evidence; ``embedder`` may be None (lexical scores alone)."""

    embedder: Embedder | None
    max_blocks: int = 4
    units_per_block: int = 4
    max_unit_chars: int = 1200
    lexical_weight: float = 0.5
    rank_penalty: float = 0.06  # retrieval's order counts: later blocks rank lower at an equal match
    # A unit is kept when it scores at least this share of the best one; None keeps every block (its best units).
    min_share: float | None = 0.55

    def __call__(self, question: str, hits: Sequence[Hit]) -> Evidence:
        wants_code = bool(_CODE_QUESTION.search(question))
        how_to = bool(_HOW_TO.search(question))
        per_block = [self._candidates(h.chunk.text) for h in hits]
        flat = [u for units in per_block for u in units]
        if flat:
            self._score(question, per_block, wants_code, how_to)
        best = max((u.score for u in flat), default=0.0)
        floor = float("-inf")  # min_share None: every block keeps its best units
        if self.min_share is not None:
            floor = best * self.min_share if best > 0 else best - 1.0
        blocks: list[EvidenceBlock] = []
        for hit, units in zip(hits, per_block, strict=True):
            chosen = sorted((u for u in units if u.score >= floor), key=lambda u: -u.score)[: self.units_per_block]
            if chosen:
                blocks.append(EvidenceBlock(hit, sorted(chosen, key=lambda u: u.position), units))
        # Keep the blocks whose best unit is strongest, then restore retrieval order for numbering.
        keep = sorted(blocks, key=lambda b: -b.best)[: self.max_blocks]
        ordered = [b for b in blocks if any(b is k for k in keep)]
        return Evidence(question, ordered, wants_code, how_to)

    def _candidates(self, text: str) -> list[Unit]:
        """The units of ``text`` that may be quoted: never a fence marker or an instruction aimed at a model
        (a page that gives orders is quoted material, not an answer), nor an overlong unit."""
        units = [u for u in split_units(text) if len(u.text) <= self.max_unit_chars and not aimed_at_model(u.text)]
        for i, u in enumerate(units):
            u.position = i  # positions index all_units, where a unit's neighbours are looked up
        return units

    def _score(self, question: str, per_block: list[list[Unit]], wants_code: bool, how_to: bool) -> None:
        flat = [u for units in per_block for u in units]
        quoted = _normal(question)
        q_stems = stems(question)
        unit_stems = [stems(u.text) for u in flat]
        df: dict[str, int] = {}
        for s in unit_stems:
            for t in s & q_stems:
                df[t] = df.get(t, 0) + 1
        n = len(flat)
        idf = {t: math.log(1 + n / df.get(t, 0.5)) for t in q_stems}
        total = sum(idf.values()) or 1.0
        lexical = [sum(idf[t] for t in s & q_stems) / total for s in unit_stems]
        if self.embedder is not None:
            q = self.embedder.embed_query(question)
            vectors = _embed_short(self.embedder, [_embedding_text(u) for u in flat])
            sims = vectors @ q
        else:
            sims = np.zeros(n)
        i = 0
        for rank, units in enumerate(per_block):
            for u in units:
                if self.embedder is not None:
                    u.vector = vectors[i]
                score = float(sims[i]) + self.lexical_weight * lexical[i] - self.rank_penalty * rank
                if u.code and looks_like_diagram(u.text):
                    score -= 0.3
                elif u.code:
                    score += 0.08 if wants_code else 0.0 if how_to else -0.05
                    if q_stems & {_stem(p) for name in _CALLED.findall(u.text) for p in _parts(name)}:
                        score += 0.1  # the code calls what the question names: the API it asks about
                    score -= 0.01 * max(0, u.text.count("\n") - 8)  # long listings answer less directly
                if not u.code and (len(u.text) < 25 or (len(u.text.split()) < 6 and u.text[-1] not in ".!?:")):
                    score -= 0.15  # fragments ("Note:", "Dataset.num_blocks", a title) say little alone
                if quoted and quoted in _normal(u.text):  # the question itself, quoted as an example
                    score -= 0.6
                u.score = score
                i += 1
            # A listing introduced by a sentence ("set its URL:") is what that sentence points at.
            for before, u in itertools.pairwise(units):
                if u.code and not before.code and before.text.endswith(":"):
                    u.score = max(u.score, before.score - 0.1)


def _normal(text: str) -> str:
    return " ".join(_WORD.findall(text.lower()))


def _embedding_text(unit: Unit) -> str:
    return unit.text[:200]


def _embed_short(embedder: Embedder, texts: list[str], batch: int = 8) -> np.ndarray:
    """Embeddings of many short texts (units go in by their first 200 characters), a few of similar length
    at a time: padding a batch of sentences to its longest listing costs more than the extra calls (42 units
    of one answer: 130 ms in batches of 8, 590 ms in one batch of 32, on 2 CPUs)."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = np.empty((len(texts), embedder.dimension), dtype=np.float32)
    for lo in range(0, len(order), batch):
        idx = order[lo : lo + batch]
        out[idx] = embedder.embed_documents([texts[i] for i in idx])
    return out


def select(question: str, hits: Sequence[Hit], embedder: Embedder | None, **options: int | float) -> Evidence:
    """The evidence for ``question`` in ``hits`` (see :class:`Selector` for the options)."""
    return Selector(embedder, **options)(question, hits)  # type: ignore[arg-type]
