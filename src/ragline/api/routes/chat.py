"""POST /v1/chat/completions, streamed or not, as OpenAI clients expect it.

The last user message is the question and earlier user/assistant turns are context. The client's system and
developer messages are ignored (the answer follows ragline's prompt), and so are tool results: ragline calls no
tools, and an answer cites the index only. Citations come twice: as a "Sources" list at the end of the message,
and as the extra field ``citations``. docs/serving.md lists which request fields are honoured.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from ragline.api import sse
from ragline.api.auth import Tenant
from ragline.api.errors import InvalidParameterError, shown
from ragline.api.routes import Service
from ragline.api.routes.openai_models import CHAT_MODEL, chat_model
from ragline.api.schemas import OPENAI_ERROR_RESPONSES, ChatCompletionOut, ChatMessage, ChatRequest, sse_schema
from ragline.generate.base import Message
from ragline.limits import Bounds
from ragline.records import Answer, AnswerOptions, Citation, Draft, Query

router = APIRouter(prefix="/v1", tags=["openai"])

_STREAM_DOC = {
    "description": "With `stream: true`: `data: {chat.completion.chunk}` lines, then `data: [DONE]`. The last "
    "content chunk carries the Sources list; the final chunk carries `finish_reason` and `citations`.",
    "content": {"text/event-stream": {"schema": sse_schema()}},
}


@router.post(
    "/chat/completions",
    response_model=ChatCompletionOut,
    responses={**OPENAI_ERROR_RESPONSES, 200: _STREAM_DOC},
    summary="OpenAI-compatible chat completion answered from the index",
)
async def chat_completions(body: ChatRequest, service: Service, tenant: Tenant) -> Response:
    chat_model(body.model)
    refuse_unsupported(body)
    question, history = conversation(body.messages)
    # OpenAI clients put retrieved context in the message: the message limit, not /query's question limit,
    # applies; what the language model can read is checked when the prompt is built (a 400 naming its window).
    bounds = Bounds(
        service.settings.max_message_chars,
        service.settings.max_k,
        question="the last user message",
        param=f"messages[{_last_user(body.messages)}].content",
        setting="serve.max_message_chars",
    )
    wanted = body.answer_tokens()
    max_tokens = None if wanted is None else min(wanted, service.backend.served.max_answer_tokens)
    # No draft: an OpenAI stream's text cannot be taken back once sent.
    options = AnswerOptions(body.mode, max_tokens, body.temperature, draft=False)
    asked = Query(question, body.k, body.filters, tenant, tuple(history), options)
    reply = _Reply(f"chatcmpl-{uuid.uuid4().hex}", int(time.time()))
    usage = bool(body.stream_options and body.stream_options.include_usage)
    return await service.respond(
        asked, body.stream, reply.completion, lambda pieces: reply.chunks(pieces, usage), _stream_error, bounds=bounds
    )


def refuse_unsupported(body: ChatRequest) -> None:
    """A clear 400 for what ragline cannot honour. Tools may be offered (the model is free not to call them,
    as with ``tool_choice: "auto"``), never required."""
    if body.n not in (None, 1):
        raise InvalidParameterError("only one choice is generated: n must be 1", param="n")
    for field, choice in (("tool_choice", body.tool_choice), ("function_call", body.function_call)):
        if choice is not None and choice not in ("auto", "none"):
            raise InvalidParameterError(
                f"ragline answers from its index and calls no tools: {field} may only be 'auto' or 'none'",
                param=field,
            )
    if body.response_format is not None and body.response_format.type != "text":
        raise InvalidParameterError(
            "answers are cited text: response_format may only be {'type': 'text'}", param="response_format"
        )
    if body.logprobs:
        raise InvalidParameterError("log probabilities are not available", param="logprobs")


def conversation(messages: list[ChatMessage]) -> tuple[str, list[Message]]:
    """(question, history): the last user message, and the user/assistant turns before it."""
    last_user = _last_user(messages)
    question = messages[last_user].text()
    history = [
        {"role": m.role, "content": m.text()}
        for m in messages[:last_user]
        if m.role in ("user", "assistant") and m.text().strip()
    ]
    return question, history


def _last_user(messages: list[ChatMessage]) -> int:
    for i in range(len(messages) - 1, -1, -1):
        if messages[i].role == "user":
            return i
    raise InvalidParameterError("the conversation has no user message to answer", param="messages")


def _stream_error(exc: BaseException) -> list[bytes]:
    return [sse.event(None, shown(exc).body(openai=True)), sse.event(None, "[DONE]")]


def sources_text(citations: list[Citation]) -> str:
    if not citations:
        return ""
    lines = []
    for c in citations:
        chunk = c.hit.chunk
        name = chunk.title if chunk.section in ("", chunk.title) else f"{chunk.title} — {chunk.section}"
        lines.append(f"[{c.n}] {name}: {chunk.url}")
    return "\n\nSources:\n" + "\n".join(lines)


def _extensions(answer: Answer) -> dict[str, Any]:
    """ragline's fields beside OpenAI's: the citations, and how the answer was made."""
    return {
        "citations": [c.to_json() for c in answer.citations],
        "llm": answer.llm,
        "mode": answer.mode,
        "grounded": answer.grounded,
        "fallback": answer.fallback,
    }


class _Reply:
    """One completion's envelope, whole or as chunks."""

    def __init__(self, completion_id: str, created: int) -> None:
        self.head = {"id": completion_id, "created": created, "model": CHAT_MODEL}

    def completion(self, answer: Answer) -> dict[str, Any]:
        message = {"role": "assistant", "content": answer.answer + sources_text(answer.citations)}
        return {
            **self.head,
            "object": "chat.completion",
            "choices": [{"index": 0, "message": message, "finish_reason": answer.finish_reason}],
            "usage": answer.usage.to_json(),
            **_extensions(answer),
        }

    def chunk(self, delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return sse.event(None, {**self.head, "object": "chat.completion.chunk", "choices": [choice], **extra})

    async def chunks(self, pieces: AsyncIterator[str | Draft | Answer], include_usage: bool) -> AsyncIterator[bytes]:
        yield self.chunk({"role": "assistant", "content": ""})
        async for piece in pieces:
            if isinstance(piece, str):
                yield self.chunk({"content": piece})
                continue
            if isinstance(piece, Draft):  # never asked for here; a draft is not part of the answer's text
                continue
            if piece.citations:
                yield self.chunk({"content": sources_text(piece.citations)})
            yield self.chunk({}, piece.finish_reason, **_extensions(piece))
            if include_usage:
                usage = {**self.head, "object": "chat.completion.chunk", "choices": [], "usage": piece.usage.to_json()}
                yield sse.event(None, usage)
        yield sse.event(None, "[DONE]")
