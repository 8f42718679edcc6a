"""POST /query (the `ragline ask --json` object, or SSE) and POST /search (the `ragline search --json` object)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from ragline.api import sse
from ragline.api.auth import Tenant
from ragline.api.routes import Service
from ragline.api.schemas import ERROR_RESPONSES, AnswerOut, QueryRequest, SearchOut, SearchRequest, sse_schema
from ragline.records import Answer, AnswerOptions, Draft, Query

router = APIRouter(tags=["query"])

_SSE_DOC = {
    "description": 'With `stream: true`: in auto mode, first `event: draft` (data `{"text"}`): the extractive '
    'answer, to show while the model writes; then `event: token` (data `{"text"}`) for each piece of the answer, '
    "which replaces the draft, then `event: citations` (the citations list), then `event: done` (the whole answer "
    'object). A failure after the stream started arrives as `event: error` (data `{"error": {...}}`) and ends '
    "the stream.",
    "content": {"text/event-stream": {"schema": sse_schema("draft", "token", "citations", "done", "error")}},
}


@router.post(
    "/query",
    response_model=AnswerOut,
    responses={**ERROR_RESPONSES, 200: _SSE_DOC},
    summary="Answer a question with citations",
)
async def query(body: QueryRequest, service: Service, tenant: Tenant) -> Response:
    history = tuple(t.model_dump() for t in body.history if t.content.strip())
    # Only a stream can show a draft before the answer replaces it: a JSON answer never makes one.
    options = AnswerOptions(body.mode, body.max_tokens, draft=body.draft if body.stream else False)
    asked = Query(body.query, body.k, body.filters, tenant, history, options)
    return await service.respond(
        asked, body.stream, Answer.to_json, _query_events, lambda e: [sse.event("error", sse.error_data(e))]
    )


async def _query_events(pieces: AsyncIterator[str | Draft | Answer]) -> AsyncIterator[bytes]:
    # Citations are known first but sent after the tokens: a client renders the answer, then its sources.
    async for piece in pieces:
        if isinstance(piece, str):
            yield sse.event("token", {"text": piece})
        elif isinstance(piece, Draft):
            yield sse.event("draft", {"text": piece.text})
        else:
            yield sse.event("citations", [c.to_json() for c in piece.citations])
            yield sse.event("done", piece.to_json())


@router.post("/search", response_model=SearchOut, responses=ERROR_RESPONSES, summary="Retrieve chunks, no answer")
async def search(body: SearchRequest, service: Service, tenant: Tenant) -> Response:
    hits = await service.search(Query(body.query, body.k, body.filters, tenant))
    return JSONResponse({"query": body.query, "hits": [h.to_json() for h in hits]})
