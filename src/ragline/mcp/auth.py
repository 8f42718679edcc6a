"""API keys on the streamable HTTP transport: the HTTP API's keys and tenants (``serve.api_keys``).

Each HTTP request is checked before the MCP layer sees it: without a valid ``Authorization: Bearer <key>``
(when keys are configured) it gets 401 and never reaches a session. The key's tenant travels with the request
(in the ASGI scope's state), so each tool call is scoped by the key that carried it, not by whoever opened
the session.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from ragline.api.auth import tenant_for_key
from ragline.api.errors import describe, error_body
from ragline.api.settings import ServeSettings
from ragline.errors import RaglineError

# Where the key's tenant sits in ``scope["state"]`` (None: no keys configured, every chunk is visible).
TENANT_STATE = "ragline.tenant"


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None."""
    scheme, _, token = (authorization or "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


class ApiKeys:
    """ASGI middleware: refuse requests without a valid key, and record the key's tenant for the tools."""

    def __init__(self, app: ASGIApp, settings: ServeSettings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # lifespan: the session manager's start and stop
            await self.app(scope, receive, send)
            return
        token = bearer_token(Headers(scope=scope).get("authorization"))
        try:
            tenant = tenant_for_key(self.settings, token)
        except RaglineError as e:
            await _refuse(send, *describe(e))
            return
        # A copy: the state dict uvicorn hands each request is shared with the lifespan's.
        scope = {**scope, "state": {**scope.get("state", {}), TENANT_STATE: tenant}}
        await self.app(scope, receive, send)


async def _refuse(send: Send, status: int, kind: str, message: str) -> None:
    body = json.dumps(error_body(status, kind, message)).encode()
    headers: list[tuple[bytes, bytes]] = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"www-authenticate", b'Bearer realm="ragline"'),
    ]
    start: dict[str, Any] = {"type": "http.response.start", "status": status, "headers": headers}
    await send(start)
    await send({"type": "http.response.body", "body": body})
