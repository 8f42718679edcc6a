"""HTTP errors: the API's own error kinds, and what a client may see of any error.

Bodies have the OpenAI shape, ``{"error": {"message", "type", "code"}}``, on every route, so OpenAI clients
show the message. 4xx messages describe the request; 5xx messages are fixed sentences, because the full
message (logged) may name files, hosts or URLs of the deployment.
"""

from __future__ import annotations

import logging
from typing import Any

from ragline.errors import RaglineError

log = logging.getLogger(__name__)


class UnauthorizedError(RaglineError, http_status=401, kind="unauthorized", public=None):
    """No API key, or one that is not configured."""


class ForbiddenError(RaglineError, http_status=403, kind="forbidden", public=None):
    """A valid key without the rights the route needs (the admin routes)."""


class NotSupportedError(RaglineError, http_status=501, kind="not_supported", public=None):
    """The serving engine cannot do this with the configured index."""


class PayloadTooLargeError(RaglineError, http_status=413, kind="payload_too_large", public=None):
    """A request body over the server's bound."""


class _Busy(RaglineError, public=None):
    """No answer slot is free; the client may retry after ``retry_after`` seconds (sent as Retry-After)."""

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TenantBusyError(_Busy, http_status=429, kind="rate_limited"):
    """The tenant (API key) already runs its share of the server's answers."""


class ServerBusyError(_Busy, http_status=503, kind="overloaded"):
    """Every answer slot of this server process is taken."""


class RequestTimeoutError(RaglineError, http_status=504, kind="timeout", public=None):
    """The whole request took longer than ``serve.request_timeout``."""


class ServiceUnavailableError(RaglineError, http_status=503, kind="unavailable", public=None):
    """A part of the service (a replica, a deployment) cannot take the request right now."""


def error_body(status: int, kind: str, message: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "code": status}}


def retry_headers(exc: BaseException) -> dict[str, str] | None:
    """Retry-After for a refusal that a client should retry later."""
    return {"Retry-After": str(exc.retry_after)} if isinstance(exc, _Busy) else None


def describe(exc: BaseException) -> tuple[int, str, str]:
    """(HTTP status, type, message safe to show) for any exception; logs what is hidden."""
    if isinstance(exc, RaglineError):
        if exc.public is not None:  # the client sees a fixed sentence: the log keeps what it hides
            log.warning("%s: %s", type(exc).__name__, exc)
        return exc.http_status, exc.kind, exc.public or str(exc)
    log.error("unexpected error", exc_info=exc)
    return 500, "internal", "internal error"
