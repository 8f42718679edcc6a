"""Response bodies decoded with a bound on what they expand to.

An HTTP client that decodes ``Content-Encoding`` as it reads hands over whole decoded chunks, so a small
compressed page can expand to gigabytes before any size check runs. The crawler reads the raw bytes (bounded)
and decodes them here, never producing more than ``limit + 1`` bytes: gzip and deflate with zlib's output
bound, zstd through a stream reader read in bounded steps. It asks only for those encodings; a body in any
other (br, say) is refused rather than decoded without a bound.
"""

from __future__ import annotations

import importlib.util
import io
import zlib


class TooBig(Exception):
    """The decoded body would be larger than the limit."""


class UnsupportedEncoding(Exception):
    """A content encoding this module cannot decode with a bound."""


_ZSTD = importlib.util.find_spec("zstandard") is not None
ACCEPT_ENCODING = "gzip, deflate" + (", zstd" if _ZSTD else "")
_STEP = 1 << 16


def decode(body: bytes, content_encoding: str, limit: int) -> bytes:
    """``body`` with its content encodings undone (last applied first); TooBig past ``limit`` bytes."""
    out, over = _undo(body, content_encoding, limit)
    if over:
        raise TooBig
    return out


def decode_prefix(body: bytes, content_encoding: str, limit: int) -> tuple[bytes, bool]:
    """The first ``limit`` decoded bytes of ``body`` (which may itself be cut short), and whether there were more."""
    out, over = _undo(body, content_encoding, limit)
    return out[:limit], over


def _undo(body: bytes, content_encoding: str, limit: int) -> tuple[bytes, bool]:
    """The encodings undone, never producing more than ``limit + 1`` bytes at any step, and whether any step
    went past ``limit`` (a cut inner stream can decode to something short, which is still not the whole body)."""
    over = len(body) > limit
    codings = [c.strip().lower() for c in content_encoding.split(",") if c.strip()]
    for coding in reversed(codings):
        if coding in ("identity", ""):
            continue
        if coding in ("gzip", "x-gzip"):
            body = _zlib(body, 16 + zlib.MAX_WBITS, limit)
        elif coding == "deflate":
            try:
                body = _zlib(body, zlib.MAX_WBITS, limit)  # zlib-wrapped, as the RFC says
            except zlib.error:
                body = _zlib(body, -zlib.MAX_WBITS, limit)  # raw deflate, as some servers send
        elif coding == "zstd" and _ZSTD:
            body = _zstd(body, limit)
        else:
            raise UnsupportedEncoding(coding)
        over = over or len(body) > limit
    return body, over


def _zlib(data: bytes, wbits: int, limit: int) -> bytes:
    return zlib.decompressobj(wbits).decompress(data, limit + 1)


def _zstd(data: bytes, limit: int) -> bytes:
    import zstandard

    reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data), read_across_frames=True)
    out = bytearray()
    try:
        while len(out) <= limit:
            piece = reader.read(min(_STEP, limit + 1 - len(out)))
            if not piece:
                break
            out += piece
    except zstandard.ZstdError as e:
        raise zlib.error(str(e)) from e
    return bytes(out)
