"""Request text the rest of the server can rely on: JSON may spell a lone surrogate (``"\\ud800"``), which no
UTF-8 encoder (a response, a log line, a tokenizer, an LLM request) can carry. Such code points become U+FFFD
at the edge, before any route sees the body."""

from __future__ import annotations

import json
import re
from typing import Any

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")  # a decoded pair is one astral character: what is left is lone


def without_lone_surrogates(body: bytes) -> bytes:
    """``body`` as it is, or re-encoded with every lone surrogate in its JSON strings replaced by U+FFFD."""
    if b"\\u" not in body and b"\\U" not in body:  # only an escape can spell one (raw bytes are not UTF-8)
        return body
    try:
        data = json.loads(body)
    except ValueError:  # not JSON (or not UTF-8): the route answers 400 as usual
        return body
    if not _has_surrogate(data):
        return body
    return json.dumps(_replaced(data), ensure_ascii=False).encode("utf-8")


def _has_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        return _LONE_SURROGATE.search(value) is not None
    if isinstance(value, dict):
        return any(_has_surrogate(k) or _has_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_surrogate(v) for v in value)
    return False


def _replaced(value: Any) -> Any:
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {_replaced(k): _replaced(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_replaced(v) for v in value]
    return value
