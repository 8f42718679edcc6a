"""Structured logs: one JSON object per line, each carrying the id of the request it belongs to.

The request id lives in a context variable: the HTTP edge sets it (from ``X-Request-ID`` or a new one),
worker threads inherit it (anyio copies the context), and Ray Serve replicas set it from what the ingress
passes with each call. A logging filter copies it onto every record.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import time
import uuid
from collections.abc import Iterator
from contextvars import ContextVar
from typing import IO, Any

REQUEST_ID_HEADER = "X-Request-ID"
MAX_REQUEST_ID = 128  # longer incoming ids are cut: they end up in every log line

request_id_var: ContextVar[str | None] = ContextVar("ragline_request_id", default=None)

# Fields of the JSON line besides ts, level, logger and message, when a record carries them.
FIELDS = (
    "request_id",
    "method",
    "route",
    "status",
    "duration_ms",
    "tenant",
    "stage",
    "hits",
    "tokens",
    "deployment",
)
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


def new_request_id() -> str:
    return uuid.uuid4().hex


def clean_request_id(value: str | None) -> str | None:
    """An incoming id made safe for logs and headers: printable ASCII without spaces, bounded; None if empty."""
    if not value:
        return None
    kept = "".join(c for c in value if 33 <= ord(c) <= 126)[:MAX_REQUEST_ID]
    return kept or None


def current_request_id() -> str | None:
    return request_id_var.get()


@contextlib.contextmanager
def request_context(request_id: str | None) -> Iterator[None]:
    """Run a block with ``request_id`` as the current request id (a no-op for None)."""
    if request_id is None:
        yield
        return
    token = request_id_var.set(request_id)
    try:
        yield
    finally:
        request_id_var.reset(token)


class RequestIdFilter(logging.Filter):
    """Puts the current request id on each record (keeping one a record already has, e.g. Ray Serve's)."""

    def filter(self, record: logging.LogRecord) -> bool:
        rid = request_id_var.get()
        if rid is not None or not hasattr(record, "request_id"):
            record.request_id = rid
        return True


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "message", "request_id", ...extras}`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": _timestamp(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or request_id_var.get(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in entry and not key.startswith("_"):
                entry[key] = value if isinstance(value, str | int | float | bool | type(None)) else str(value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """``LEVEL logger [request id]: message``, for terminals."""

    def format(self, record: logging.LogRecord) -> str:
        rid = getattr(record, "request_id", None)
        head = f"{record.levelname} {record.name}" + (f" [{rid}]" if rid else "")
        text = f"{head}: {record.getMessage()}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def _timestamp(created: float) -> str:
    whole = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
    return f"{whole}.{int(created % 1 * 1000):03d}Z"


def configure_logging(
    fmt: str = "json", level: int = logging.INFO, stream: IO[str] | None = None, *, ragline_level: int | None = None
) -> logging.Handler:
    """Send every log record to ``stream`` (stderr) as JSON or text, with request ids; replaces root handlers."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    if ragline_level is not None:
        logging.getLogger("ragline").setLevel(ragline_level)
    return handler
