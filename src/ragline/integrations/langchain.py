"""A LangChain retriever over a ragline index: ``RaglineRetriever(rag=ragline.open(...))``.

Needs the ``langchain`` extra: ``pip install 'ragline[langchain]'``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from ragline.errors import MissingDependencyError

try:
    from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
    from langchain_core.documents import Document
    from langchain_core.retrievers import BaseRetriever
except ImportError as e:  # pragma: no cover - exercised in a subprocess by the tests
    raise MissingDependencyError("langchain-core", "langchain") from e


from ragline.library import Ragline
from ragline.records import Hit

__all__ = ["RaglineRetriever", "to_document"]


def to_document(hit: Hit, rank: int | None = None) -> Document:
    """A hit as a LangChain Document: the chunk's text, and its provenance, score and rank in the metadata.

    ``score`` is the search's own: a cosine similarity in dense mode, a reciprocal-rank-fusion value
    (about 0.01 to 0.03, comparable only within one result list) in hybrid mode, the default. ``rank`` (1 =
    best) says the same thing in every mode."""
    c = hit.chunk
    return Document(
        page_content=c.text,
        id=c.id,
        metadata={
            "source": c.url,  # URL#anchor, what an answer cites
            "score": float(hit.score),
            **({"rank": rank} if rank is not None else {}),
            "title": c.title,
            "section": c.section,
            "chunk_id": c.id,
            "doc_id": c.doc_id,
            **({"tenant": c.metadata["tenant"]} if "tenant" in c.metadata else {}),
        },
    )


class RaglineRetriever(BaseRetriever):
    """The chunks that best match a query, as ``ragline search`` ranks them.

    ``k`` (default: the index's ``retrieval.k``), ``filters`` and ``tenant`` are those of ``Ragline.search``.
    The retriever does not close ``rag``: its owner does.
    """

    rag: Ragline
    k: int | None = None
    filters: Mapping[str, Any] | None = None
    tenant: str | None = None

    # ``invoke(query, k=1)`` (LangChain passes keyword arguments on when the method names them) overrides the
    # retriever's own k, filters or tenant for that one call.
    def _get_relevant_documents(
        self,
        query: str,
        *,
        run_manager: CallbackManagerForRetrieverRun,
        k: int | None = None,
        filters: Mapping[str, Any] | None = None,
        tenant: str | None = None,
    ) -> list[Document]:
        return self._search(query, k, filters, tenant)

    async def _aget_relevant_documents(
        self,
        query: str,
        *,
        run_manager: AsyncCallbackManagerForRetrieverRun,
        k: int | None = None,
        filters: Mapping[str, Any] | None = None,
        tenant: str | None = None,
    ) -> list[Document]:
        # Search is blocking (the embedder and the index): a worker thread keeps the event loop free.
        return await asyncio.to_thread(self._search, query, k, filters, tenant)

    def _search(
        self, query: str, k: int | None, filters: Mapping[str, Any] | None, tenant: str | None
    ) -> list[Document]:
        """The call's own options, else the retriever's."""
        hits = self.rag.search(query, k or self.k, filters=filters or self.filters, tenant=tenant or self.tenant)
        return [to_document(h, rank) for rank, h in enumerate(hits, start=1)]
