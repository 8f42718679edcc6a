"""Sections -> chunks: recursive splitting on paragraph, line and sentence boundaries, with overlap.

Sizes are counted by a length function (the embedding model's tokens by default, or characters).
A chunk never spans two sections, and keeps its character offsets in the document text.

A document that would make more than ``max_chunks`` chunks is refused (a SourceError with the reason): one
page of 100k links must not become thousands of chunks that outrank real pages by their number.

The splitter measures each piece up to three times (to choose it, to merge it, to drop it from the overlap),
so lengths are remembered for the document being split: a model's tokenizer is then run once per piece.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from langchain_text_splitters import RecursiveCharacterTextSplitter

from ragline.errors import SourceError
from ragline.records import Chunk, Document

if TYPE_CHECKING:
    from ragline.config import ChunkSettings
    from ragline.embed.base import Embedder

LengthFunction = Callable[[str], int]
SEPARATORS = ["\n\n", "\n", ". ", "? ", "! ", "; ", ", ", " ", ""]


class Chunker:
    """Splits documents into chunks of at most ``size`` units with ``overlap`` units shared."""

    def __init__(self, size: int, overlap: int, length: LengthFunction = len, max_chunks: int = 2000) -> None:
        self.size = size
        self.max_chunks = max_chunks
        self.overlap = overlap if overlap < size else size // 4
        self.length = length
        self._lengths = threading.local()  # per thread: the lengths measured in the document being split
        self._splitter = RecursiveCharacterTextSplitter(
            chunk_size=self.size,
            chunk_overlap=self.overlap,
            length_function=self._measure,
            separators=SEPARATORS,
            keep_separator="end",
            strip_whitespace=True,
        )

    def _measure(self, text: str) -> int:
        seen: dict[str, int] = self._lengths.seen
        n = seen.get(text)
        if n is None:
            n = seen[text] = self.length(text)
        return n

    def split(self, doc: Document, origin: str | None = None) -> list[Chunk]:
        self._lengths.seen = {}
        try:
            return self._split(doc, origin)
        finally:
            self._lengths.seen = {}

    def _split(self, doc: Document, origin: str | None) -> list[Chunk]:
        chunks: list[Chunk] = []
        doc_id, doc_hash = doc.doc_id, doc.content_hash
        for section in doc.sections:
            prev_start, prev_end = -1, 0
            pieces = self._splitter.split_text(section.text)
            if len(chunks) + len(pieces) > self.max_chunks:
                raise SourceError(f"too many chunks: over max_chunks {self.max_chunks}")
            for piece in pieces:
                # Pieces come back in order: none starts before the previous start or ends before the
                # previous end (overlap < size). A piece can be the previous one's tail, or grow it from
                # the same start, when a split did not fit. Searching from there finds the right copy
                # even in repetitive text; the very same span twice means a later copy.
                lo = max(prev_start, prev_end - len(piece), 0)
                at = section.text.find(piece, lo)
                if at == prev_start and at + len(piece) == prev_end:
                    at = section.text.find(piece, at + 1)
                if at < 0:  # cannot happen with strip_whitespace pieces; keep offsets sane anyway
                    at = min(lo, len(section.text))
                prev_start, prev_end = at, at + len(piece)
                chunks.append(
                    Chunk(
                        doc_id=doc_id,
                        source=doc.source,
                        title=doc.title,
                        section=section.title,
                        anchor=section.anchor,
                        text=piece,
                        start=section.start + at,
                        end=section.start + at + len(piece),
                        index=len(chunks),
                        kind=doc.kind,
                        doc_hash=doc_hash,
                        origin=origin,
                        metadata=dict(doc.metadata),
                    )
                )
        return chunks


def token_chunker(
    size: int, overlap: int, count_tokens: LengthFunction, max_tokens: int, max_chunks: int = 2000
) -> Chunker:
    """A chunker sized in model tokens, never above what the model reads (minus room for titles)."""
    size = min(size, max(16, max_tokens - 32))
    return Chunker(size=size, overlap=overlap, length=count_tokens, max_chunks=max_chunks)


def make_chunker(settings: ChunkSettings, embedder: Callable[[], Embedder]) -> Chunker:
    """The chunker ``settings`` describe; ``embedder`` is called only for token sizes (its tokenizer counts)."""
    if settings.unit == "chars":
        return Chunker(size=settings.size, overlap=settings.overlap, max_chunks=settings.max_chunks)
    model = embedder()
    return token_chunker(settings.size, settings.overlap, model.count_tokens, model.max_tokens, settings.max_chunks)
