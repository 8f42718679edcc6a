"""Evaluation datasets: questions with their relevant documents, and BEIR corpora as ragline documents.

Two question formats:

* pages: JSON lines ``{"question": ..., "source": URL}``; a retrieved chunk is relevant when it comes from
  the question's page (anchors ignored, URLs normalised, see :func:`normalise_url`).
* BEIR: ``queries.jsonl`` (``{"_id", "text"}``) with a qrels TSV (``query-id, corpus-id, score``); a chunk
  belongs to the corpus document whose id is in its metadata (``beir_id``), as the BEIR loader stores it.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from ragline.errors import SourceError
from ragline.records import Chunk, Document, Section

Unit = Literal["chunks", "documents"]


@dataclass(slots=True)
class Question:
    """One question and its relevance judgements: document key -> grade (> 0 is relevant)."""

    qid: str
    text: str
    relevant: dict[str, int]
    reference: str | None = None  # a reference answer, for answer evaluation
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class QuestionSet:
    """Questions plus how to tell which document a retrieved chunk belongs to.

    ``unit`` is what hit@k and recall@k count: the first k chunks (pages format: what a prompt of k
    blocks would hold) or the first k distinct documents (BEIR, a document scored by its best chunk).
    """

    name: str
    questions: list[Question]
    key: Callable[[Chunk], str]
    unit: Unit
    notes: dict[str, Any] = field(default_factory=dict)


def normalise_url(url: str) -> str:
    """A page's identity: no #anchor, lowercase scheme and host, no default port, no trailing
    ``index.html`` or slash. File paths pass through with only the anchor removed."""
    url = url.strip()
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return url.split("#", 1)[0].rstrip("/") or url
    host = parts.netloc.lower()
    for port in (":80", ":443"):
        if host.endswith(port):
            host = host[: -len(port)]
    path = parts.path
    if path.endswith("/index.html"):
        path = path[: -len("index.html")]
    return urlunsplit((parts.scheme.lower(), host, path.rstrip("/"), parts.query, ""))


def page_key(chunk: Chunk) -> str:
    return normalise_url(chunk.source)


def beir_key(chunk: Chunk) -> str:
    """The BEIR document id of a chunk: its metadata, else the last segment of a ``beir://`` source."""
    bid = chunk.metadata.get("beir_id")
    return str(bid) if bid is not None else chunk.source.rsplit("/", 1)[-1]


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    try:
        with path.open(encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if line.strip():
                    try:
                        yield json.loads(line)
                    except ValueError as e:
                        raise SourceError(f"{path}:{n}: not JSON: {e}") from e
    except OSError as e:
        raise SourceError(f"cannot read {path}: {e.strerror or e}") from e


def load_page_questions(path: Path, name: str | None = None) -> QuestionSet:
    """``{"question", "source"[, "id", "reference"]}`` lines; the source page is the relevant document."""
    questions: list[Question] = []
    for n, row in enumerate(read_jsonl(path), 1):
        text, source = row.get("question"), row.get("source")
        if not isinstance(text, str) or not isinstance(source, str) or not text.strip():
            raise SourceError(f"{path}:{n}: expected {{'question': ..., 'source': URL}}")
        questions.append(
            Question(
                qid=str(row.get("id", n)),
                text=text.strip(),
                relevant={normalise_url(source): 1},
                reference=row.get("reference") or row.get("answer"),
                extra={"source": source},
            )
        )
    return QuestionSet(name or path.stem, questions, page_key, "chunks")


def load_answer_questions(path: Path, references: Path | None = None) -> list[Question]:
    """Questions for answer evaluation: ``{"question"[, "source", "id", "reference"]}`` lines, with
    reference answers optionally from a second file matched by ``id`` or by question text."""
    refs: dict[str, str] = {}
    points: dict[str, list[str]] = {}
    for row in read_jsonl(references) if references else ():
        ref = row.get("reference") or row.get("answer")
        if isinstance(ref, str):
            for key in (row.get("id"), row.get("question")):
                if key is not None:
                    refs[str(key).strip()] = ref
                    points[str(key).strip()] = _key_points(row)
    out = []
    for n, row in enumerate(read_jsonl(path), 1):
        text = row.get("question")
        if not isinstance(text, str) or not text.strip():
            raise SourceError(f"{path}:{n}: expected {{'question': ...}}")
        qid = str(row.get("id", n))
        source = row.get("source")
        key = qid if "id" in row and qid in refs else text.strip()
        reference = row.get("reference") or refs.get(key)
        key_points = _key_points(row) or points.get(key, [])
        out.append(
            Question(
                qid=qid,
                text=text.strip(),
                relevant={normalise_url(source): 1} if isinstance(source, str) else {},
                reference=reference,
                extra={"key_points": key_points} if key_points else {},
            )
        )
    return out


def _key_points(row: dict[str, Any]) -> list[str]:
    """A reference's key points (``key_points``: a list of short strings), or none."""
    value = row.get("key_points")
    return [str(p) for p in value if isinstance(p, str) and p.strip()] if isinstance(value, list) else []


def load_qrels(path: Path) -> dict[str, dict[str, int]]:
    """BEIR qrels: query id -> {corpus id: grade}; a header line is skipped."""
    out: dict[str, dict[str, int]] = {}
    try:
        with path.open(encoding="utf-8", newline="") as f:
            for n, row in enumerate(csv.reader(f, delimiter="\t"), 1):
                if not row or (n == 1 and not row[-1].strip().lstrip("-").isdigit()):
                    continue
                if len(row) < 3:
                    raise SourceError(f"{path}:{n}: expected query-id, corpus-id, score")
                out.setdefault(row[0].strip(), {})[row[1].strip()] = int(row[2])
    except OSError as e:
        raise SourceError(f"cannot read {path}: {e.strerror or e}") from e
    return out


def load_beir_questions(queries: Path, qrels: Path, name: str | None = None) -> QuestionSet:
    """BEIR queries that have at least one relevant document in ``qrels``."""
    judged = load_qrels(qrels)
    questions = []
    for row in read_jsonl(queries):
        qid = str(row.get("_id", ""))
        relevant = {d: g for d, g in judged.get(qid, {}).items() if g > 0}
        if relevant:
            questions.append(Question(qid=qid, text=str(row.get("text", "")).strip(), relevant=relevant))
    return QuestionSet(name or queries.parent.name, questions, beir_key, "documents")


def load_questions(path: Path, qrels: Path | None = None) -> QuestionSet:
    """Pages format, or BEIR when ``qrels`` is given."""
    return load_beir_questions(path, qrels) if qrels is not None else load_page_questions(path)


def beir_documents(corpus: Path, dataset: str, limit: int | None = None) -> Iterator[Document]:
    """A BEIR ``corpus.jsonl`` as documents: one section (the title), source ``beir://<dataset>/<_id>``."""
    for n, row in enumerate(read_jsonl(corpus)):
        if limit is not None and n >= limit:
            return
        bid = str(row["_id"])
        title = str(row.get("title") or "").strip()
        text = str(row.get("text") or "").strip()
        if not text and not title:
            continue
        yield Document.from_sections(
            f"beir://{dataset}/{bid}",
            title,
            "text",
            [Section(title=title, text=text or title)],
            metadata={"beir_id": bid},
        )
