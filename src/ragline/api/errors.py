"""HTTP errors: the API's own error kinds, and what a client may see of any error.

Every body is ``{"error": {...}}``, so OpenAI clients show the message. The native routes send
``{"message", "type", "code"}`` with ``type`` ragline's kind and ``code`` the HTTP status; the OpenAI-compatible
``/v1/`` routes send OpenAI's own shape, ``{"message", "type", "param", "code"}``, with OpenAI's error types,
``code`` ragline's kind (or what OpenAI calls it), and 400 where the native routes answer 422. 4xx messages
describe the request; 5xx messages are fixed sentences, because the full message (logged) may name files, hosts
or URLs of the deployment.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from ragline.errors import BadRequestError, RaglineError

log = logging.getLogger(__name__)


class _Told(RaglineError, public=None):
    """An error whose message the client sees as it is."""


class UnauthorizedError(_Told, http_status=401, kind="unauthorized"):
    """No API key, or one that is not configured."""


class ForbiddenError(_Told, http_status=403, kind="forbidden"):
    """A valid key without the rights the route needs (the admin routes)."""


class NotSupportedError(_Told, http_status=501, kind="not_supported"):
    """The serving engine cannot do this with the configured index."""


class PayloadTooLargeError(_Told, http_status=413, kind="payload_too_large"):
    """A request body over the server's bound."""


class RequestTimeoutError(_Told, http_status=504, kind="timeout"):
    """The whole request took longer than ``serve.request_timeout``."""


class ServiceUnavailableError(_Told, http_status=503, kind="unavailable"):
    """A part of the service (a replica, a deployment) cannot take the request right now."""


class InvalidParameterError(_Told, http_status=400, kind="invalid_request"):
    """A request field the server cannot honour; ``param`` names it, as OpenAI's errors do."""

    def __init__(self, message: str, *, param: str | None = None, code: str = "invalid_value") -> None:
        super().__init__(message)
        self.param = param
        self.code = code


class ModelNotFoundError(InvalidParameterError, http_status=404, kind="model_not_found"):
    """A model name the server does not serve (OpenAI's 404 ``model_not_found``)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, param="model", code="model_not_found")


class _Busy(RaglineError, public=None):
    """No answer slot is free; the client may retry after ``retry_after`` seconds (sent as Retry-After)."""

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TenantBusyError(_Busy, http_status=429, kind="rate_limited"):
    """The tenant (API key) already runs its share of the server's answers."""


class ServerBusyError(_Busy, http_status=503, kind="overloaded"):
    """Every answer slot of this server process is taken."""


@dataclass(frozen=True, slots=True)
class Shown:
    """What a client sees of an error: status, ragline's kind, a safe message, and for OpenAI's shape the
    offending field (``param``) and a code."""

    status: int
    kind: str
    message: str
    param: str | None = None
    code: str | None = None

    def body(self, *, openai: bool = False) -> dict[str, Any]:
        if not openai:
            return {"error": {"message": self.message, "type": self.kind, "code": self.status}}
        error = {"message": self.message, "type": openai_type(self.status), "param": self.param}
        return {"error": {**error, "code": self.code or self.kind}}

    def status_for(self, *, openai: bool = False) -> int:
        return 400 if openai and self.status == 422 else self.status


def openai_type(status: int) -> str:
    """OpenAI's error type for an HTTP status."""
    if status >= 500:
        return "server_error"
    return {401: "authentication_error", 403: "permission_error", 429: "rate_limit_error"}.get(
        status, "invalid_request_error"
    )


def is_openai_path(path: str) -> bool:
    """The OpenAI-compatible routes, whose errors take OpenAI's shape."""
    return path.startswith("/v1/")


def error_body(status: int, kind: str, message: str) -> dict[str, Any]:
    return Shown(status, kind, message).body()


def retry_headers(exc: BaseException) -> dict[str, str] | None:
    """Retry-After for a refusal that a client should retry later."""
    return {"Retry-After": str(exc.retry_after)} if isinstance(exc, _Busy) else None


def shown(exc: BaseException) -> Shown:
    """What a client may see of any exception; logs what is hidden."""
    if isinstance(exc, RaglineError):
        if exc.public is not None:  # the client sees a fixed sentence: the log keeps what it hides
            log.warning("%s: %s", type(exc).__name__, exc)
        param = exc.param if isinstance(exc, InvalidParameterError | BadRequestError) else None
        if isinstance(exc, InvalidParameterError):
            code: str | None = exc.code
        else:  # a request rule (ragline.limits) broken in a named field: OpenAI's code for a bad value
            code = "invalid_value" if param is not None else None
        return Shown(exc.http_status, exc.kind, exc.public or str(exc), param, code)
    log.error("unexpected error", exc_info=exc)
    return Shown(500, "internal", "internal error")


def validation_message(errors: Any, limit: int = 3) -> str:
    """'body.k: Input should be greater than or equal to 1; ...' without echoing the (maybe huge) input; one
    line for the HTTP API and the MCP tools alike. A union's branch names (``constrained-str``,
    ``list[...]``) are not shown, nor the "should be a list" of the branch the input did not take."""
    found: list[tuple[str, str, bool]] = []  # (where, message, is a type mismatch)
    for e in errors:
        loc = [str(p) for p in e.get("loc", ()) if not (isinstance(p, str) and is_type_tag(p))]
        msg = str(e.get("msg", "invalid"))
        if loc[-1:] == ["[key]"] and e.get("type") == "string_pattern_mismatch":  # a filter key: not the regex
            loc = loc[:-2]
            msg = f"{_snippet(str(e.get('input', '')))!r} is not a filter key ({_FILTER_KEY_RULE})"
        found.append((".".join(loc), msg, str(e.get("type", "")).endswith(TYPE_ERRORS)))
    # Where one branch of a union says what is wrong, the others' type mismatches are noise; where none does,
    # the mismatches are one sentence ("should be a valid string or a valid list").
    pointed = [where for where, _, mismatch in found if not mismatch]
    said: dict[str, str] = {}
    for where, msg, mismatch in found:
        if mismatch and any(p == where or p.startswith(f"{where}.") for p in pointed):
            continue
        if mismatch and where in said and said[where].startswith("Input should be"):
            said[where] += " or " + msg.removeprefix("Input should be ")
        elif where not in said:
            said[where] = msg
    kept = [f"{where}: {msg}" if where else msg for where, msg in said.items()]
    more = len(kept) - limit
    return "; ".join(kept[:limit]) + (f" (and {more} more)" if more > 0 else "")


# Pydantic's error types that say only "not of this type" (a union reports one per branch).
TYPE_ERRORS = ("_type", "_parsing", "model_attributes_type", "is_instance_of", "dict_type", "list_type")
_SCALAR_TAGS = ("str", "int", "float", "bool", "none", "list", "dict")
_TAG_PREFIXES = ("constrained-", "function-", "json-or-python", "lax-", "nullable", "tagged-union", "chain")


def is_type_tag(part: str) -> bool:
    """A union member's tag in an error's location ("str", "list[ContentPart]", "constrained-str"), not a field."""
    if part == "[key]":  # a dict's key: where a filter key's error is
        return False
    return "[" in part or part[:1].isupper() or part in _SCALAR_TAGS or part.startswith(_TAG_PREFIXES)


# What ragline.api.schemas.FilterKey's pattern says, in words.
_FILTER_KEY_RULE = "up to 4 dotted names of letters, digits, _ and -, each starting with a letter or _"


def _snippet(text: str, n: int = 40) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def describe(exc: BaseException) -> tuple[int, str, str]:
    """(HTTP status, type, message safe to show) for any exception; logs what is hidden."""
    s = shown(exc)
    return s.status, s.kind, s.message
