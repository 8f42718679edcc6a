"""The Python API: one object over an index, doing what the commands do (``ragline ingest``, ``search``,
``ask``, ``delete``) and returning the same records their ``--json`` output is made from.

A thin shell like the CLI: the parts come from ``Components``, ingest from ``ragline.ingest``, answers from
``Agent``, deletes from ``ragline.ops``. Opening is cheap; the index and the models load on first use (or on
``warm_up()``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypedDict, Unpack

if TYPE_CHECKING:
    from ragline.components import Components
    from ragline.config import Settings
    from ragline.generate.base import Message
    from ragline.ingest.gate import Gate
    from ragline.ingest.report import IndexReport
    from ragline.ingest.run import Progress
    from ragline.ops.delete import DeleteReport
    from ragline.records import Answer, Event, Hit

__all__ = ["AskOptions", "Ragline", "SearchOptions", "open"]


class SearchOptions(TypedDict, total=False):
    """What narrows a search, as keywords of ``search``, ``ask`` and ``stream``.

    ``filters``: ``source`` (a URL or path prefix), ``type`` (html, markdown, rst, notebook, pdf, docx) or
    any metadata key. ``tenant``: only that tenant's chunks can match, whatever the filters say.
    """

    filters: Mapping[str, Any] | None
    tenant: str | None


class AskOptions(SearchOptions, total=False):
    """``ask`` and ``stream`` take these too. ``history``: earlier turns, ``{"role": "user" | "assistant",
    "content": ...}``, oldest first. ``mode``: extractive (no model), generative (the model, checked) or auto;
    default ``answer.mode``. ``max_tokens``: at most this many tokens of answer (``llm.max_tokens`` caps it).
    ``draft`` (``stream``): in auto mode, a ``Draft`` (the extract) while the model writes; default ``answer.draft``."""

    history: Sequence[Message] | None
    mode: str | None
    max_tokens: int | None
    draft: bool | None


class Ragline:
    """One index and the models that serve it. Use it as a context manager, or call ``close()``.

    Safe to share between threads once warmed up: the parts are built once, under a lock.
    """

    def __init__(self, settings: Settings) -> None:
        from ragline.components import Components

        self._components = Components(settings)
        self._lock = threading.RLock()
        self._reading = False  # the index is open and checked against the embedding model
        self._closed = False

    @property
    def settings(self) -> Settings:
        """The settings this object was opened with (the tree ``ragline.toml`` and ``RAGLINE_*`` describe)."""
        return self._components.settings

    @property
    def components(self) -> Components:
        """The parts (store, embedder, retriever, agent), for what the facade does not cover."""
        self._check_open()
        return self._components

    # -- lifecycle ---------------------------------------------------------------------------------

    def warm_up(self, *, llm: bool = False) -> Ragline:
        """Open the index and load the embedding (and rerank) models now rather than on the first query;
        with ``llm``, load or reach the language model too. Returns self."""
        self._open_for_reading()
        self._components.retriever.warm_up()
        if llm:
            self._components.generator.warm_up()
        return self

    def close(self) -> None:
        """Flush and release the index; the object cannot be used afterwards. Closing twice is harmless."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._components.close()

    def release(self) -> None:
        """Close the index until the next call, so that another process may open it meanwhile (the embedded
        engine admits one process at a time); the models stay loaded."""
        with self._lock:
            self._check_open()
            self._reading = False
            self._components.store.close()

    def __enter__(self) -> Ragline:
        self._check_open()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"Ragline(data_dir={str(self.settings.data_dir)!r}, {state})"

    # -- writing -----------------------------------------------------------------------------------

    def ingest(
        self,
        paths_or_urls: str | Path | Sequence[str | Path],
        *,
        tenant: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        recreate: bool = False,
        url_template: str | None = None,
        selector: str | None = None,
        progress: Progress | None = None,
        gate: Gate | None = None,
    ) -> IndexReport:
        """Index files, folders and sites (``http(s)://`` URLs are crawled), like ``ragline ingest``.

        Unchanged documents cost nothing, changed ones are replaced, and files gone from an ingested folder
        are removed. ``tenant`` and ``metadata`` are stamped on every document (filterable);
        ``url_template`` and ``selector`` apply to this call only. The ingest builds a new generation of the
        index, published once it passes ``gate`` (``ingest.gate.Gate``: questions, margin, minimum documents;
        a failed gate raises ``GateFailedError`` and leaves the published one serving). Returns the report
        ``--json`` prints.
        """
        from ragline.errors import BadRequestError
        from ragline.ingest.engines import run_ingest
        from ragline.ingest.report import record_ingest
        from ragline.ingest.run import stamp

        paths = [paths_or_urls] if isinstance(paths_or_urls, str | Path) else list(paths_or_urls)
        if not paths:
            raise BadRequestError("nothing to ingest: give at least one file, folder or URL")
        stamped = stamp(metadata, tenant)
        parse: dict[str, Any] = {}
        if url_template is not None:
            parse["url_template"] = url_template
        if selector is not None:
            parse["html_selector"] = selector
        with self._lock, self._parse_settings(parse):
            self._check_open()
            report = run_ingest(
                paths, self._components, gate=gate, recreate=recreate, progress=progress, metadata=stamped
            )
            # The ingest left the index open with this embedding model: searches may follow at once.
            self._reading = True
        record_ingest(self.settings.layout, report, paths, self.settings.ingest.engine)
        return report

    def delete(self, source: str, *, tenant: str | None = None, all_tenants: bool = False) -> DeleteReport:
        """Delete every chunk of the documents under a source prefix (a URL path, a file, or an ingested
        folder), like ``ragline delete --source`` without the prompt. A report with 0 chunks: nothing matched.
        Where tenants' documents are under the prefix, say whose: ``tenant=`` or ``all_tenants=True``."""
        from ragline.errors import BadRequestError, EmptyIndexError
        from ragline.ops.delete import Scope, delete_sources, source_prefix

        if not source.strip():
            raise BadRequestError("the source prefix is empty: it would match every document")
        with self._lock:
            self._check_open()
            store = self._components.store
            if store.info() is None:
                raise EmptyIndexError(f"no index in {self.settings.data_dir.resolve()}: nothing to delete")
            return delete_sources(store, source_prefix(source, store), Scope(tenant, all_tenants))

    # -- reading -----------------------------------------------------------------------------------

    def search(self, question: str, k: int | None = None, **options: Unpack[SearchOptions]) -> list[Hit]:
        """The best matching chunks (``Hit``: chunk and score), like ``ragline search``; ``filters`` and
        ``tenant`` narrow it (``SearchOptions``)."""
        self._open_for_reading()
        return self._components.retriever.search(question, k, **options)

    def ask(self, question: str, k: int | None = None, **options: Unpack[AskOptions]) -> Answer:
        """The answer with its citations, like ``ragline ask``; ``filters``, ``tenant``, ``history``, ``mode``
        and ``max_tokens`` shape it (``AskOptions``)."""
        from ragline.records import Done

        whole: AskOptions = {**options, "draft": False}  # nobody sees a draft of a whole answer
        for event in self.stream(question, k, **whole):
            if isinstance(event, Done):
                return event.answer
        raise AssertionError("the answer stream ended without an answer")  # pragma: no cover

    def stream(self, question: str, k: int | None = None, **options: Unpack[AskOptions]) -> Iterator[Event]:
        """The answer as it is made: ``Retrieved`` (the citations); in auto mode a ``Draft`` (the extract, to
        show while the model writes; the answer replaces it); ``Token``... (pieces of text), then ``Done`` (the
        whole ``Answer``). Takes what ``ask`` takes."""
        from ragline.limits import check_mode
        from ragline.records import Query

        check_mode(options.get("mode"))
        query = Query.of(question, k=k, **options)
        self._open_for_reading()
        return self._components.agent.stream(query)

    # -- internals ---------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            from ragline.errors import RaglineError

            raise RaglineError("this Ragline is closed: open another with ragline.open()")

    def _open_for_reading(self) -> None:
        with self._lock:
            self._check_open()
            if not self._reading:
                self._components.open_for_reading()
                self._reading = True

    @contextmanager
    def _parse_settings(self, changes: dict[str, Any]) -> Iterator[None]:
        """The parse settings with ``changes`` for the duration of one ingest, then as they were."""
        if not changes:
            yield
            return
        s = self._components.settings
        before = s.parse
        s.parse = before.model_copy(update=changes)
        try:
            yield
        finally:
            s.parse = before


def open(  # ragline.open, like gzip.open: shadows the builtin only in this module
    data_dir: str | Path | None = None, *, settings: Settings | None = None, **overrides: Any
) -> Ragline:
    """A ``Ragline`` over the index in ``data_dir`` (default: ``RAGLINE_DATA_DIR``, ``ragline.toml``, then
    ``./.ragline``), or over ready-made ``settings``. Cheap: nothing loads until first use.

    ``overrides`` are settings sections or fields, e.g. ``llm={"backend": "openai", "base_url": ...}``;
    they win over the environment and ``ragline.toml``, as options do on the command line.
    """
    from ragline.config import load_settings
    from ragline.errors import ConfigError

    if settings is not None:
        if data_dir is not None or overrides:
            raise ConfigError("give settings, or data_dir and overrides, not both")
        return Ragline(settings)
    return Ragline(load_settings(data_dir=Path(data_dir) if data_dir is not None else None, **overrides))
