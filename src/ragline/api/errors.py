"""HTTP errors: the API's own error kinds, and what a client may see of any error.

Bodies have the OpenAI shape, ``{"error": {"message", "type", "code"}}``, on every route, so OpenAI clients
show the message. 4xx messages describe the request; 5xx messages are fixed sentences, because the full
message (logged) may name files, hosts or URLs of the deployment.
"""

from __future__ import annotations

import logging
from typing import Any

from ragline.errors import (
    BadRequestError,
    ConfigError,
    EmptyIndexError,
    GenerationError,
    LLMTimeoutError,
    LLMUnavailableError,
    MissingDependencyError,
    RaglineError,
    SourceError,
    StoreError,
)

log = logging.getLogger(__name__)


class UnauthorizedError(RaglineError):
    """No API key, or one that is not configured."""

    http_status = 401


class ForbiddenError(RaglineError):
    """A valid key without the rights the route needs (the admin routes)."""

    http_status = 403


class NotSupportedError(RaglineError):
    """The serving engine cannot do this with the configured index."""

    http_status = 501


class PayloadTooLargeError(RaglineError):
    http_status = 413


class _Busy(RaglineError):
    """No answer slot is free; the client may retry after ``retry_after`` seconds (sent as Retry-After)."""

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TenantBusyError(_Busy):
    """The tenant (API key) already runs its share of the server's answers."""

    http_status = 429


class ServerBusyError(_Busy):
    """Every answer slot of this server process is taken."""

    http_status = 503


class RequestTimeoutError(RaglineError):
    """The whole request took longer than ``serve.request_timeout``."""

    http_status = 504


class ServiceUnavailableError(RaglineError):
    """A part of the service (a replica, a deployment) cannot take the request right now."""

    http_status = 503


# (error class, type, public message or None to show the error's own message); first match wins.
_PUBLIC: list[tuple[type[RaglineError], str, str | None]] = [
    (UnauthorizedError, "unauthorized", None),
    (ForbiddenError, "forbidden", None),
    (NotSupportedError, "not_supported", None),
    (PayloadTooLargeError, "payload_too_large", None),
    (TenantBusyError, "rate_limited", None),
    (ServerBusyError, "overloaded", None),
    (RequestTimeoutError, "timeout", None),
    (ServiceUnavailableError, "unavailable", None),
    (BadRequestError, "invalid_request", None),
    (SourceError, "invalid_request", None),
    (LLMUnavailableError, "llm_unavailable", "the language model is unavailable; try again later"),
    (LLMTimeoutError, "llm_timeout", "the language model did not answer in time; try again later"),
    (GenerationError, "llm_failed", "the language model failed to answer"),
    (EmptyIndexError, "index_unavailable", "the index is empty: nothing has been ingested yet"),
    (StoreError, "index_unavailable", "the index is not available"),
    (MissingDependencyError, "internal", "internal error"),
    (ConfigError, "internal", "internal error"),
]


def error_body(status: int, kind: str, message: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "code": status}}


def retry_headers(exc: BaseException) -> dict[str, str] | None:
    """Retry-After for a refusal that a client should retry later."""
    return {"Retry-After": str(exc.retry_after)} if isinstance(exc, _Busy) else None


def describe(exc: BaseException) -> tuple[int, str, str]:
    """(HTTP status, type, message safe to show) for any exception; logs what is hidden."""
    if isinstance(exc, RaglineError):
        status = exc.http_status
        for cls, kind, public in _PUBLIC:
            if isinstance(exc, cls):
                if public is not None:
                    log.warning("%s: %s", type(exc).__name__, exc)
                return status, kind, public or str(exc)
        log.error("%s: %s", type(exc).__name__, exc)
        return (
            status,
            "internal" if status >= 500 else "invalid_request",
            "internal error" if status >= 500 else str(exc),
        )
    log.error("unexpected error", exc_info=exc)
    return 500, "internal", "internal error"
