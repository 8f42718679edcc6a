"""The OpenAI-compatible surface: POST /v1/chat/completions (streamed or not) and GET /v1/models.

The last user message is the question and earlier user/assistant turns are context; the client's own
system messages are ignored (the answer follows ragline's prompt). Citations come twice: as a "Sources"
list at the end of the message, and as the extra field ``citations``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from ragline.agent import AnswerOptions, Done, Event, Query, Retrieved, Token
from ragline.api import sse
from ragline.api.auth import Tenant
from ragline.api.routes import Service
from ragline.api.schemas import ERROR_RESPONSES, ChatCompletionOut, ChatMessage, ChatRequest, ModelList
from ragline.errors import BadRequestError
from ragline.generate.base import Message
from ragline.records import Answer, Citation

router = APIRouter(prefix="/v1", tags=["openai"])

MODEL_ID = "ragline"
_CREATED = int(time.time())

_STREAM_DOC = {
    "description": "With `stream: true`: `data: {chat.completion.chunk}` lines, then `data: [DONE]`. The last "
    "content chunk carries the Sources list; the final chunk carries `finish_reason` and `citations`.",
    "content": {"text/event-stream": {"schema": {"type": "string"}}},
}


@router.get("/models", response_model=ModelList, summary="The one model: ragline's cited answers")
async def models(tenant: Tenant) -> dict[str, Any]:
    return {
        "object": "list",
        "data": [{"id": MODEL_ID, "object": "model", "created": _CREATED, "owned_by": "ragline"}],
    }


@router.post(
    "/chat/completions",
    response_model=ChatCompletionOut,
    responses={**ERROR_RESPONSES, 200: _STREAM_DOC},
    summary="OpenAI-compatible chat completion answered from the index",
)
async def chat_completions(body: ChatRequest, service: Service, tenant: Tenant) -> Response:
    question, history = conversation(body.messages)
    completion_id = f"chatcmpl-{uuid.uuid4().hex}"
    created = int(time.time())
    options = AnswerOptions(body.mode, body.max_completion_tokens or body.max_tokens)
    asked = Query(question, body.k, body.filters, tenant, tuple(history), options)
    if body.stream:
        events = await service.open_stream(asked)
        usage = bool(body.stream_options and body.stream_options.include_usage)
        chunks = _chunks(events, completion_id, created, usage)
        return sse.response(
            chunks,
            lambda e: [sse.event(None, sse.error_data(e)), sse.event(None, "[DONE]")],
            keepalive=service.settings.sse_keepalive,
        )
    answer = await service.answer(asked)
    return JSONResponse(
        {
            "id": completion_id,
            "object": "chat.completion",
            "created": created,
            "model": MODEL_ID,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": answer.answer + sources_text(answer.citations)},
                    "finish_reason": answer.finish_reason,
                }
            ],
            "usage": answer.usage.to_json(),
            "citations": [c.to_json() for c in answer.citations],
            "llm": answer.llm,
            **_answer_fields(answer),
        }
    )


def conversation(messages: list[ChatMessage]) -> tuple[str, list[Message]]:
    """(question, history): the last user message, and the user/assistant turns before it."""
    last_user = next((i for i in range(len(messages) - 1, -1, -1) if messages[i].role == "user"), None)
    if last_user is None:
        raise BadRequestError("the conversation has no user message to answer")
    history = [
        {"role": m.role, "content": m.text()}
        for m in messages[:last_user]
        if m.role in ("user", "assistant") and m.text().strip()
    ]
    return messages[last_user].text(), history


def _answer_fields(answer: Answer) -> dict[str, object]:
    """ragline's extensions beside citations: how the answer was made and whether it is grounded."""
    return {"mode": answer.mode, "grounded": answer.grounded, "fallback": answer.fallback}


def sources_text(citations: list[Citation]) -> str:
    if not citations:
        return ""
    lines = []
    for c in citations:
        chunk = c.hit.chunk
        name = chunk.title if chunk.section in ("", chunk.title) else f"{chunk.title} — {chunk.section}"
        lines.append(f"[{c.n}] {name}: {chunk.url}")
    return "\n\nSources:\n" + "\n".join(lines)


async def _chunks(
    events: AsyncGenerator[Event, None], completion_id: str, created: int, include_usage: bool
) -> AsyncIterator[bytes]:
    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        body = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": MODEL_ID}
        return sse.event(None, {**body, "choices": [choice], **extra})

    yield chunk({"role": "assistant", "content": ""})
    answer: Answer | None = None
    streamed = False
    async for event in events:
        if isinstance(event, Token):
            streamed = True
            yield chunk({"content": event.text})
        elif isinstance(event, Done):
            answer = event.answer
        elif not isinstance(event, Retrieved):  # pragma: no cover - the Event union is closed
            raise TypeError(f"unexpected event {event!r}")
    if answer is None:  # pragma: no cover - the service always ends with Done
        raise RuntimeError("the answer stream ended without an answer")
    if answer.answer and not streamed:  # a retrieval-only answer: its notice was never streamed
        yield chunk({"content": answer.answer})
    if answer.citations:
        yield chunk({"content": sources_text(answer.citations)})
    yield chunk(
        {},
        answer.finish_reason,
        citations=[c.to_json() for c in answer.citations],
        llm=answer.llm,
        **_answer_fields(answer),
    )
    if include_usage:
        body = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": MODEL_ID}
        yield sse.event(None, {**body, "choices": [], "usage": answer.usage.to_json()})
    yield sse.event(None, "[DONE]")
