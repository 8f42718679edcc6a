"""One error hierarchy; the CLI maps it to exit codes and the API to HTTP statuses."""

from __future__ import annotations


class RaglineError(Exception):
    """Root of every error ragline raises on purpose."""

    exit_code = 1
    http_status = 500


class ConfigError(RaglineError):
    """Settings that cannot work together, or a value out of range."""

    exit_code = 2
    http_status = 500


class MissingDependencyError(RaglineError):
    """An optional part is not installed; the message names the extra to install."""

    exit_code = 2
    http_status = 500

    def __init__(self, package: str, extra: str) -> None:
        super().__init__(f"{package} is not installed: pip install 'ragline[{extra}]'")


class SourceError(RaglineError):
    """A document or source that cannot be read or parsed."""

    exit_code = 3
    http_status = 400


class StoreError(RaglineError):
    """The vector index is missing, empty or incompatible."""

    exit_code = 4
    http_status = 503


class EmptyIndexError(StoreError):
    """Nothing has been ingested yet."""


class IndexMismatchError(StoreError):
    """The index was built with another embedding model or dimension."""


class GenerationError(RaglineError):
    """The language model failed to answer."""

    exit_code = 5
    http_status = 502


class LLMUnavailableError(GenerationError):
    """The language model endpoint cannot be reached."""

    http_status = 503


class LLMTimeoutError(GenerationError):
    """The language model did not answer in time."""

    http_status = 504


class BadRequestError(RaglineError):
    """A request that cannot be served as asked (empty query, k out of range...)."""

    exit_code = 2
    http_status = 422
