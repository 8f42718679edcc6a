"""Request limits enforced before any work: body size, and how many answers run at once."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ragline.api.errors import ServerBusyError, Shown, TenantBusyError, is_openai_path
from ragline.api.text import without_lone_surrogates


class BodyLimitMiddleware:
    """Rejects bodies over ``max_bytes`` (or a path's own bound in ``by_path``) with 413, whether or not the
    client sent Content-Length."""

    def __init__(self, app: ASGIApp, max_bytes: int, by_path: dict[str, int] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.by_path = by_path or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        limit = self.by_path.get(scope.get("path", ""), self.max_bytes)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._reject(send, limit, scope.get("path", ""))
            return
        # Read the (small) body here, so a chunked upload cannot get past the limit either; lone surrogates
        # in its JSON strings are replaced here too, so no route, log or encoder meets one.
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body = message.get("body", b"")
            size += len(body)
            if size > limit:
                await self._reject(send, limit, scope.get("path", ""))
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        body = without_lone_surrogates(b"".join(chunks))
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: wait for the disconnect, as servers do

        await self.app(scope, replay, send)

    async def _reject(self, send: Send, limit: int, path: str) -> None:
        shown = Shown(413, "payload_too_large", f"the request body is larger than {limit} bytes")
        payload = json.dumps(shown.body(openai=is_openai_path(path))).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": payload})


class AnswerSlots:
    """How many answers (streamed or not) run at once: at most ``limit`` in this process and at most
    ``per_tenant`` for one tenant, so that one tenant never takes every slot. A request that finds no slot is
    refused at once, before any work: 429 when its tenant has its share, 503 when the process is full, both
    with ``Retry-After``. Requests without a tenant (a server without API keys) share the process limit only.

    Used from the event loop only, so plain counters are enough.
    """

    def __init__(self, limit: int, per_tenant: int, retry_after: int) -> None:
        self.limit = limit
        self.per_tenant = min(per_tenant, limit)
        self.retry_after = retry_after
        self.active = 0
        self.by_tenant: dict[str, int] = {}

    def acquire(self, tenant: str | None) -> Slot:
        if tenant is not None and self.by_tenant.get(tenant, 0) >= self.per_tenant:
            raise TenantBusyError(
                f"this key already has {self.per_tenant} answers in progress (its limit); retry in a moment",
                retry_after=self.retry_after,
            )
        if self.active >= self.limit:
            raise ServerBusyError(
                f"the server is answering as many questions as it can ({self.limit}); retry in a moment",
                retry_after=self.retry_after,
            )
        self.active += 1
        if tenant is not None:
            self.by_tenant[tenant] = self.by_tenant.get(tenant, 0) + 1
        return Slot(self, tenant)

    def _release(self, tenant: str | None) -> None:
        self.active -= 1
        if tenant is not None:
            left = self.by_tenant[tenant] - 1
            if left:
                self.by_tenant[tenant] = left
            else:
                del self.by_tenant[tenant]


class Slot:
    """One taken answer slot, released exactly once (by the answer's end, or by the finalizer of a response
    that was never sent)."""

    def __init__(self, slots: AnswerSlots, tenant: str | None) -> None:
        self.slots = slots
        self.tenant = tenant
        self.held = True

    def release(self) -> None:
        if self.held:
            self.held = False
            self.slots._release(self.tenant)
