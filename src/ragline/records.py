"""Typed records that flow through the pipeline, each keeping its provenance.

Document -> Section -> Chunk -> Hit -> Answer. Offsets are character offsets into
``Document.text``, which is the sections' texts joined by blank lines. A question travels as a ``Query``
and its answer comes back as events: ``Retrieved``, ``Token``..., ``Done``.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

SECTION_SEPARATOR = "\n\n"
# Fixed namespace so point ids are the same on every machine and every run.
_POINT_NAMESPACE = uuid.UUID("6f1d3c52-8a4e-4f0b-9d57-2b7e1c9a0e41")


Message = dict[str, str]  # a chat turn: {"role": "system" | "user" | "assistant", "content": "..."}

# How an answer is made. extractive: the documentation's own sentences, cited, no model; generative: the model's
# answer, checked and flagged; auto: the model's answer when it passes the grounding check, the extractive otherwise.
Mode = Literal["auto", "extractive", "generative"]
MODES: tuple[Mode, ...] = get_args(Mode)


def content_hash(text: str) -> str:
    """Short, stable hash of a text (not for security)."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def doc_id_for(source: str, tenant: str | None = None) -> str:
    """A document's id: a UUID of its tenant and source URL (or path), stable across runs and machines.

    Tenants share one index, so the same URL ingested for two tenants is two documents: one tenant's
    ingest (or a page whose canonical link names another tenant's URL) can never replace the other's.
    """
    return str(uuid.uuid5(_POINT_NAMESPACE, _scoped(source, tenant)))


def _scoped(key: str, tenant: str | None) -> str:
    # Without a tenant the key is the source alone, as it always was: existing indexes keep their ids.
    return key if tenant is None else f"tenant\x00{tenant}\x00{key}"


def tenant_of(metadata: dict[str, Any]) -> str | None:
    tenant = metadata.get("tenant")
    return None if tenant is None else str(tenant)


@dataclass(slots=True)
class Section:
    """A run of a document under one heading."""

    title: str
    text: str
    anchor: str | None = None
    level: int = 1
    start: int = 0  # offset of ``text`` in Document.text, set by Document.from_sections
    end: int = 0


@dataclass(slots=True)
class Document:
    """A parsed document: where it lives, what it is called, and its sections."""

    source: str  # public URL (or file path) without anchor
    title: str
    kind: str  # html | markdown | rst | notebook | text | pdf | docx
    sections: list[Section]
    text: str = ""
    path: str | None = None  # local file it was read from, if any
    metadata: dict[str, Any] = field(default_factory=dict)
    redacted: dict[str, int] = field(default_factory=dict)  # values redacted at parse time, by kind

    @classmethod
    def from_sections(
        cls,
        source: str,
        title: str,
        kind: str,
        sections: list[Section],
        path: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Document:
        """Build a document, dropping empty sections and setting their offsets."""
        kept = [s for s in sections if s.text.strip()]
        parts: list[str] = []
        pos = 0
        for s in kept:
            if parts:
                pos += len(SECTION_SEPARATOR)
            s.start, s.end = pos, pos + len(s.text)
            parts.append(s.text)
            pos = s.end
        return cls(
            source=source,
            title=title,
            kind=kind,
            sections=kept,
            text=SECTION_SEPARATOR.join(parts),
            path=path,
            metadata=dict(metadata or {}),
        )

    @property
    def doc_id(self) -> str:
        return doc_id_for(self.source, tenant_of(self.metadata))

    @property
    def content_hash(self) -> str:
        """Changes whenever anything that ends up in the index changes."""
        heads = "|".join(f"{s.title}#{s.anchor}" for s in self.sections)
        meta = repr(sorted((k, repr(v)) for k, v in self.metadata.items()))
        return content_hash(f"{self.title}\x00{heads}\x00{meta}\x00{self.text}")


@dataclass(slots=True)
class Loaded:
    """One input after reading: a document, or the reason it could not be read."""

    fallback_source: str
    document: Document | None = None
    error: str | None = None
    gone: bool = False  # the source answered that it no longer exists (HTTP 404/410): its document goes


@dataclass(slots=True)
class Chunk:
    """A piece of one section, the unit that is embedded and retrieved."""

    doc_id: str
    source: str
    title: str  # document title
    section: str  # section title
    anchor: str | None
    text: str
    start: int  # offsets into Document.text
    end: int
    index: int  # position of the chunk within its document
    kind: str = "text"
    doc_hash: str = ""
    origin: str | None = None  # the ingest root (folder or start URL) the document came from
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        """Deterministic point id: the same chunk of the same document always maps to it."""
        key = f"{self.source}\x00{self.index}\x00{content_hash(self.text)}"
        return str(uuid.uuid5(_POINT_NAMESPACE, _scoped(key, tenant_of(self.metadata))))

    @property
    def url(self) -> str:
        return f"{self.source}#{self.anchor}" if self.anchor else self.source

    def embedding_text(self) -> str:
        """What the embedder sees: the titles give context the chunk text may lack."""
        head = self.title if self.section in ("", self.title) else f"{self.title} - {self.section}"
        return f"{head}\n{self.text}" if head else self.text

    def payload(self) -> dict[str, Any]:
        return {
            "doc_id": self.doc_id,
            "source": self.source,
            "url": self.url,
            "title": self.title,
            "section": self.section,
            "anchor": self.anchor,
            "text": self.text,
            "start": self.start,
            "end": self.end,
            "chunk_index": self.index,
            "kind": self.kind,
            "doc_hash": self.doc_hash,
            "origin": self.origin,
            "metadata": self.metadata,
        }

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> Chunk:
        return cls(
            doc_id=payload["doc_id"],
            source=payload["source"],
            title=payload.get("title", ""),
            section=payload.get("section", ""),
            anchor=payload.get("anchor"),
            text=payload.get("text", ""),
            start=int(payload.get("start", 0)),
            end=int(payload.get("end", 0)),
            index=int(payload.get("chunk_index", 0)),
            kind=payload.get("kind", "text"),
            doc_hash=payload.get("doc_hash", ""),
            origin=payload.get("origin"),
            metadata=dict(payload.get("metadata") or {}),
        )


@dataclass(slots=True)
class Hit:
    """A retrieved chunk and its score (higher is better)."""

    chunk: Chunk
    score: float

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.chunk.url,
            "title": self.chunk.title,
            "section": self.chunk.section,
            "chunk_id": self.chunk.id,
            "score": round(float(self.score), 6),
            "text": self.chunk.text,
        }


@dataclass(slots=True)
class Citation:
    n: int
    hit: Hit

    def to_json(self) -> dict[str, Any]:
        return {"n": self.n, **self.hit.to_json()}


@dataclass(slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def to_json(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
        }


@dataclass(slots=True)
class Answer:
    question: str
    answer: str
    citations: list[Citation]
    llm: str
    timings: dict[str, float]
    usage: Usage
    mode: str = "generative"  # how the shown answer was made: extractive or generative
    grounded: bool = False  # passed the grounding check (ragline.answer.check)
    fallback: str | None = None  # why the generated answer was replaced by the extractive one
    check: dict[str, Any] | None = None  # the grounding check's findings
    search_query: str | None = None  # what retrieval searched for, when a follow-up was made standalone
    finish_reason: str = "stop"  # "length" when the answer was cut at max_tokens

    @property
    def document_ids(self) -> list[str]:
        seen: dict[str, None] = {}
        for c in self.citations:
            seen.setdefault(c.hit.chunk.doc_id, None)
        return list(seen)

    def to_json(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "answer": self.answer,
            "citations": [c.to_json() for c in self.citations],
            "document_ids": self.document_ids,
            "llm": self.llm,
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
            "usage": self.usage.to_json(),
            "mode": self.mode,
            "grounded": self.grounded,
            "fallback": self.fallback,
            "check": self.check,
            "search_query": self.search_query,
            "finish_reason": self.finish_reason,
        }


# -- a question and its answer's events ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AnswerOptions:
    """What one request may choose about its answer: the mode, the most tokens the answer may have (the
    model's, or the extract's, which is cut to them), the model's sampling temperature, and whether a draft is
    sent while the model writes (None: the ``answer.draft`` setting)."""

    mode: str | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    draft: bool | None = None


DEFAULT_OPTIONS = AnswerOptions()


@dataclass(frozen=True, slots=True)
class Query:
    """One question as every layer passes it: from a route or the command line to the backend, to a Serve
    replica, to the agent."""

    question: str
    k: int | None = None
    filters: Mapping[str, Any] | None = None
    tenant: str | None = None  # when set, only this tenant's chunks are searched
    history: Sequence[Message] = ()  # earlier chat turns (role/content), oldest first
    options: AnswerOptions = DEFAULT_OPTIONS
    search_query: str | None = None  # the question made standalone for retrieval, when a caller made it

    @classmethod
    def of(
        cls,
        question: str,
        *,
        mode: str | None = None,
        max_tokens: int | None = None,
        draft: bool | None = None,
        **fields: Any,
    ) -> Query:
        """A Query from keyword fields, with the answer options given flat (``mode``, ``max_tokens``, ``draft``)."""
        history = fields.pop("history", None) or ()
        options = AnswerOptions(mode, max_tokens, draft=draft)
        return cls(question, history=tuple(history), options=options, **fields)


@dataclass(slots=True)
class Token:
    """A piece of the answer as the model produces it."""

    text: str


@dataclass(slots=True)
class Retrieved:
    """The blocks the answer will cite, known before the first token."""

    citations: list[Citation]


@dataclass(slots=True)
class Draft:
    """The extractive answer, sent at once while a model writes (``auto`` mode): what the documentation says,
    to read during the wait. The model's answer, or the extract again if the model's fails its check, follows
    as Tokens and replaces it."""

    text: str


@dataclass(slots=True)
class Done:
    answer: Answer


Event = Token | Retrieved | Draft | Done
