"""Server-Sent Events framing; an error inside a stream becomes an event, never a cut connection."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.responses import StreamingResponse

from ragline.api.errors import describe, error_body

HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}  # proxies must not buffer the stream


def event(name: str | None, data: Any) -> bytes:
    """One SSE message; JSON keeps the data on one line."""
    payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    head = f"event: {name}\n" if name else ""
    return f"{head}data: {payload}\n\n".encode()


def error_data(exc: BaseException) -> dict[str, Any]:
    status, kind, message = describe(exc)
    return error_body(status, kind, message)


def response(chunks: AsyncIterator[bytes], on_error: Callable[[BaseException], list[bytes]]) -> StreamingResponse:
    """A text/event-stream response of ``chunks``; an exception while streaming ends it with ``on_error``."""

    async def body() -> AsyncIterator[bytes]:
        try:
            async for chunk in chunks:
                yield chunk
        except Exception as e:
            for chunk in on_error(e):
                yield chunk

    return StreamingResponse(body(), media_type="text/event-stream", headers=HEADERS)
