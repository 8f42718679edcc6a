"""One error hierarchy; the CLI maps it to exit codes and the API to HTTP statuses."""

from __future__ import annotations

from types import EllipsisType
from typing import ClassVar


class RaglineError(Exception):
    """Root of every error ragline raises on purpose.

    Each class says how the edges show it, set as class keywords: ``exit_code`` for the CLI; for HTTP the
    ``http_status``, the ``kind`` (the error type in the body) and ``public``, the fixed sentence a client
    sees in place of the message (None: the message itself, which then describes only the request, never
    the deployment's files, hosts or URLs).
    """

    exit_code: ClassVar[int] = 1
    http_status: ClassVar[int] = 500
    kind: ClassVar[str] = "internal"
    public: ClassVar[str | None] = "internal error"

    def __init_subclass__(
        cls,
        *,
        exit_code: int | None = None,
        http_status: int | None = None,
        kind: str | None = None,
        public: str | EllipsisType | None = ...,
    ) -> None:
        super().__init_subclass__()
        if exit_code is not None:
            cls.exit_code = exit_code
        if http_status is not None:
            cls.http_status = http_status
        if kind is not None:
            cls.kind = kind
        if not isinstance(public, EllipsisType):
            cls.public = public


class ConfigError(RaglineError, exit_code=2):
    """Settings that cannot work together, or a value out of range."""


class MissingDependencyError(RaglineError, exit_code=2):
    """An optional part is not installed; the message names the extra to install."""

    def __init__(self, package: str, extra: str) -> None:
        super().__init__(f"{package} is not installed: pip install 'ragline[{extra}]'")


class SourceError(RaglineError, exit_code=3, http_status=400, kind="invalid_request", public=None):
    """A document or source that cannot be read or parsed."""


class StoreError(
    RaglineError, exit_code=4, http_status=503, kind="index_unavailable", public="the index is not available"
):
    """The vector index is missing, empty or incompatible."""


class EmptyIndexError(StoreError, public="the index is empty: nothing has been ingested yet"):
    """Nothing has been ingested yet."""


class IndexMismatchError(StoreError):
    """The index was built with another embedding model or dimension."""


class GateFailedError(RaglineError, exit_code=6):
    """A new index generation did not pass its gate; it was kept unpublished and the published one serves on."""


class GenerationError(
    RaglineError, exit_code=5, http_status=502, kind="llm_failed", public="the language model failed to answer"
):
    """The language model failed to answer."""


class LLMUnavailableError(
    GenerationError,
    http_status=503,
    kind="llm_unavailable",
    public="the language model is unavailable; try again later",
):
    """The language model endpoint cannot be reached."""


class LLMTimeoutError(
    GenerationError,
    http_status=504,
    kind="llm_timeout",
    public="the language model did not answer in time; try again later",
):
    """The language model did not answer in time."""


class BadRequestError(RaglineError, exit_code=2, http_status=422, kind="invalid_request", public=None):
    """A request that cannot be served as asked (empty query, k out of range...); ``param`` names the request
    field at fault when there is one (OpenAI's errors carry it)."""

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param
