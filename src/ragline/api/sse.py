"""Server-Sent Events framing; an error inside a stream becomes an event, never a cut connection."""

from __future__ import annotations

import asyncio
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


KEEPALIVE = b": keep-alive\n\n"  # an SSE comment: clients skip it, proxies see traffic


def response(
    chunks: AsyncIterator[bytes], on_error: Callable[[BaseException], list[bytes]], *, keepalive: float
) -> StreamingResponse:
    """A text/event-stream response of ``chunks``; an exception while streaming ends it with ``on_error``.

    When ``chunks`` is quiet for ``keepalive`` seconds (a first token still on its way), a comment is sent.
    """

    async def body() -> AsyncIterator[bytes]:
        pending: asyncio.Task[bytes | None] | None = None
        try:
            while True:
                if pending is None:
                    pending = asyncio.create_task(_next(chunks))
                done, _ = await asyncio.wait({pending}, timeout=keepalive)
                if not done:
                    yield KEEPALIVE
                    continue
                chunk, pending = pending.result(), None
                if chunk is None:
                    return
                yield chunk
        except Exception as e:
            for chunk in on_error(e):
                yield chunk
        finally:
            if pending is not None:  # the client left while a step was under way
                pending.cancel()
                await asyncio.gather(pending, return_exceptions=True)
            close = getattr(chunks, "aclose", None)
            if close is not None:
                await close()

    return StreamingResponse(body(), media_type="text/event-stream", headers=HEADERS)


async def _next(chunks: AsyncIterator[bytes]) -> bytes | None:
    return await anext(chunks, None)
