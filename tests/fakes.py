"""Stand-ins for the model backends, for fast tests of plumbing: a hash embedder and a scripted generator.

Each is held to the contract suite its real backends pass (tests/embed/test_fakes.py, tests/generate/test_fakes.py),
so plumbing tested with them sees what a real backend would give. They replace no end-to-end test: the real
models run in the ``slow`` tests of the same paths. Imported as ``from fakes import ...`` (tests/ is on sys.path,
like llm_server).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

from ragline.errors import GenerationError
from ragline.generate.base import Delta, DeltaStream, Generation, Message
from ragline.records import Usage

_WORD = re.compile(r"\w+")
_MESSAGE_OVERHEAD = 4  # tokens a chat template adds around each message, about what llama.cpp's add


class HashEmbedder:
    """Deterministic unit vectors from hashed words: texts sharing words point alike, with no model to load.

    Each lowercased word adds +1 or -1 to one of ``dimension`` coordinates chosen by its hash (the hashing
    trick); a text's vector is the normalised sum, so cosine similarity rewards shared words.
    """

    def __init__(self, dimension: int = 384, *, max_tokens: int = 256, name: str = "hash-embedder") -> None:
        self.name = name
        self._dimension = dimension
        self._max_tokens = max_tokens
        self.warmed = False

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def max_tokens(self) -> int:
        return self._max_tokens

    def warm_up(self) -> None:
        self.warmed = True

    def count_tokens(self, text: str) -> int:
        return len(_WORD.findall(text))

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self._dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            out[row] = self._vector(text)
        return out

    def embed_query(self, text: str) -> np.ndarray:
        return self._vector(text)

    def _vector(self, text: str) -> np.ndarray:
        v = np.zeros(self._dimension, dtype=np.float32)
        for word in _WORD.findall(text.lower())[: self._max_tokens]:
            h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")
            v[h % self._dimension] += 1.0 if (h >> 32) & 1 else -1.0
        norm = float(np.linalg.norm(v))
        if norm == 0.0:  # no words: a fixed unit vector, so every output stays normalised
            v[0], norm = 1.0, 1.0
        return v / norm


DEFAULT_REPLY = "A deployment scales with num_replicas; the default is one replica [1]."


class ScriptedGenerator:
    """A Generator that answers with a script: ``reply`` streamed word by word, or the given pieces as they are.

    Tokens are words. ``usage`` replaces the counted usage in what it reports (a server's own report); ``fail``
    is raised by every call (a model that is down). The messages of each call are kept in ``sent``.
    """

    def __init__(
        self,
        reply: str | Sequence[str] = DEFAULT_REPLY,
        *,
        usage: Usage | None = None,
        fail: Exception | None = None,
        context_window: int = 4096,
        capable: bool = True,
        name: str = "scripted:fake",
    ) -> None:
        self.pieces = _pieces(reply) if isinstance(reply, str) else list(reply)
        self.usage = usage
        self.fail = fail
        self.context_window = context_window
        self.capable = capable
        self.name = name
        self.sent: list[list[Message]] = []

    def warm_up(self) -> None:
        if self.fail is not None:
            raise self.fail

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def count_prompt_tokens(self, messages: Sequence[Message]) -> int:
        return sum(self.count_tokens(m.get("content", "")) + _MESSAGE_OVERHEAD for m in messages)

    def generate(self, messages: list[Message], *, max_tokens: int, temperature: float) -> Generation:
        pieces, usage = self._take(messages, max_tokens)
        return Generation(text="".join(pieces), usage=usage)

    def stream(self, messages: list[Message], *, max_tokens: int, temperature: float) -> DeltaStream:
        pieces, usage = self._take(messages, max_tokens)
        for piece in pieces:
            yield Delta(piece)
        yield Delta("", usage=usage)

    def check(self) -> None:
        if self.fail is not None:
            raise self.fail

    def _take(self, messages: list[Message], max_tokens: int) -> tuple[list[str], Usage]:
        self.sent.append([dict(m) for m in messages])
        if self.fail is not None:
            raise self.fail
        prompt = self.count_prompt_tokens(messages)
        if prompt + max_tokens > self.context_window:
            raise GenerationError(
                f"{self.name}: the prompt ({prompt} tokens) and the answer ({max_tokens}) exceed the "
                f"context window of {self.context_window} tokens"
            )
        pieces = self.pieces[:max_tokens]
        return pieces, self.usage or Usage(prompt, sum(self.count_tokens(p) for p in pieces))


def _pieces(text: str) -> list[str]:
    """``text`` cut before each word, so the pieces join back to it."""
    return [p for p in re.split(r"(?<=\s)(?=\S)", text) if p]
