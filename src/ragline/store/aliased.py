"""A Qdrant collection alias as a VectorStore: readers query the alias (so they follow each publish at once),
and changes go through new generations (``ragline.store.aliases``, ``ragline.ops.generations``).

A reader looks at the alias at most once a second while it searches: when it moved to a generation built with
another embedding model than the one this store was opened with, the reader stays on the collection it was
reading and says why in ``served()`` (a query vector of one model means nothing to another's index).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from ragline.records import Hit
from ragline.store.aliases import AliasGenerations, _Sibling
from ragline.store.base import Filters, Fusion, IndexInfo, SearchMode, VectorStore
from ragline.store.facade import EngineStore
from ragline.store.generations import GenerationsBase
from ragline.store.qdrant import COLLECTION_FILE, QdrantEngine, QdrantStore
from ragline.store.snapshots import saved_info

log = logging.getLogger(__name__)

CHECK_INTERVAL = 1.0  # seconds between a reader's looks at the alias
T = TypeVar("T")


class AliasStore(QdrantStore):
    """A VectorStore on the alias ``collection``; generation N is the collection ``<collection>__gen<N>``."""

    kind = "QdrantStore"  # snapshots record the collection store: they restore across both

    def __init__(self, *args: Any, lock_dir: Path, interval: float = CHECK_INTERVAL, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.generations = AliasGenerations(self.engine, lock_dir)
        self._interval = interval
        self._checked = 0.0
        self._seen: int | None = None  # the generation the alias pointed at when last looked
        self._pinned: int | None = None  # the generation read instead of the alias's (another model), if any
        self._refused: tuple[int, str] | None = None

    @property
    def builds(self) -> AliasBuilds:
        """How new generations are made (ragline.ops.generations)."""
        return AliasBuilds(self)

    def make(self, number: int) -> VectorStore:
        """A store over generation ``number``'s collection, on this store's connection."""
        return EngineStore(self.generations.sibling(number))

    # -- following the alias ---------------------------------------------------------------------

    def served(self) -> dict[str, Any]:
        """The generation served, the one published (they differ only when it was refused), and why."""
        published = self.generations.published()
        out: dict[str, Any] = {
            "served": self._pinned if self._pinned is not None else published,
            "published": published,
        }
        if self._refused is not None:
            out["refused"] = {"generation": self._refused[0], "error": self._refused[1]}
        return out

    def refresh(self) -> None:
        """Look at the alias now (after this process published), rather than within a second."""
        self._checked = 0.0
        self._follow()

    def _follow(self) -> None:
        now = time.monotonic()
        if now - self._checked < self._interval:
            return
        self._checked = now
        number = self.generations.published()
        if number == self._seen:
            return
        self._seen, self._bm25 = number, None
        want = self._info
        info = self.generations.sibling(number).stored_info() if number is not None else None
        if want is None or info is None or info.model == want.model:
            if self._pinned is not None:
                log.info("reading the alias %s again (generation %s)", self.generations.alias, number)
            self._pinned, self._refused = None, None
            self.engine.collection, self.engine._exists = self.generations.alias, False
            return
        assert number is not None
        error = f"built with {info.model}, this reader embeds with {want.model}"
        self._refused = (number, error)
        if self._pinned is None:
            self._pinned = self._newest_with(want.model, below=number)
            if self._pinned is not None:
                self.engine.collection, self.engine._exists = self.generations.name(self._pinned), False
        log.warning("generation %d is %s: still reading generation %s", number, error, self._pinned)

    def _newest_with(self, model: str, *, below: int) -> int | None:
        """The newest generation before ``below`` built with ``model``."""
        for n in sorted((n for n in self.generations.numbers() if n < below), reverse=True):
            info = self.generations.sibling(n).stored_info()
            if info is not None and info.model == model:
                return n
        return None

    def search(
        self,
        vector: np.ndarray | None,
        k: int,
        *,
        filters: Filters | None = None,
        score_threshold: float | None = None,
        text: str | None = None,
        mode: SearchMode = "dense",
        fusion: Fusion | None = None,
    ) -> list[Hit]:
        with self.engine.guard():
            self._follow()
        return super().search(
            vector, k, filters=filters, score_threshold=score_threshold, text=text, mode=mode, fusion=fusion
        )

    # -- changes as generations --------------------------------------------------------------------

    def derive(self, change: Callable[[Any], T], note: str, *, keep: Callable[[T], bool]) -> T:
        """Apply ``change`` to a copy of the published generation and publish the copy when ``keep`` says so."""
        from ragline.ops.generations import derive_generation

        return derive_generation(self.builds, change, note, keep=keep)

    def restore(self, source: Path, check: Callable[[Any], None] | None = None) -> None:
        """Publish a copy of ``source`` as a new generation kept on purpose (see ops.generations)."""
        from ragline.ops.generations import restore_generation

        restore_generation(self.builds, source, check)

    def snapshot(self, target: Path) -> None:
        """A snapshot of the published generation's collection (or of a collection made before generations)."""
        number = self.generations.published()
        if number is None:
            super().snapshot(target)
            return
        store = self.make(number)
        try:
            store.snapshot(target)
        finally:
            store.close()


class AliasBuilds:
    """Generations as collections behind the alias (the backend of ragline.ops.generations)."""

    def __init__(self, store: AliasStore) -> None:
        self.store = store

    @property
    def generations(self) -> GenerationsBase:
        return self.store.generations

    def stage(self, number: int, base: int | None, info: IndexInfo | None) -> VectorStore:
        from ragline.store.aliases import copy_points

        gens = self.store.generations
        target = self.store.make(number)
        base_info = self.stored_info(base) if base is not None else None
        if base_info is not None or info is not None:
            target.open(base_info or info)  # type: ignore[arg-type]
            gens.made(number)
        if base is not None:
            started = time.perf_counter()
            n = copy_points(self.store.engine, gens.name(base), gens.name(number))
            log.info(
                "copied %d points of generation %d into %d in %.2f s", n, base, number, time.perf_counter() - started
            )
        return target

    def stage_snapshot(self, number: int, source: Path) -> VectorStore:
        engine = self.store.generations.sibling(number)
        with engine.guard():
            engine._load(source, saved_info(source / COLLECTION_FILE))
        self.store.generations.made(number)
        return EngineStore(engine)

    @contextmanager
    def peek(self, number: int) -> Iterator[VectorStore]:
        store = self.store.make(number)  # a server serves any number of readers: no copy needed
        try:
            yield store
        finally:
            store.close()

    def stored_info(self, number: int) -> IndexInfo | None:
        engine = self.store.generations.sibling(number)
        with engine.guard():
            return engine.stored_info()

    def refresh(self) -> None:
        self.store.refresh()

    def unpublished(self, change: Callable[[VectorStore], T]) -> T:
        # Nothing published and nothing to adopt: the change runs on the (absent) collection in place.
        return change(EngineStore[QdrantEngine](_Sibling(self.store.engine, self.store.generations.alias)))
