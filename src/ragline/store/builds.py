"""How a store makes new generations: the seam between the shared generation flows (``ragline.ops.generations``:
ingest, delete and restore as a new generation, gated, published, pruned) and a backend.

Two backends: the embedded engine (whole index folders and a pointer file, :class:`EdgeBuilds`) and a Qdrant
server or qdrant-client path (a collection per generation and a collection alias,
:class:`ragline.store.aliases.AliasBuilds`). A store that keeps generations offers ``builds``.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from ragline.store.base import IndexInfo, VectorStore
from ragline.store.filters import info_from_json
from ragline.store.generations import BASELINE, GenerationsBase

if TYPE_CHECKING:
    from ragline.store.following import FollowingStore

log = logging.getLogger(__name__)
T = TypeVar("T")


class Builds(Protocol):
    """What the generation flows need from a backend."""

    @property
    def generations(self) -> GenerationsBase: ...

    def stage(self, number: int, base: int | None, info: IndexInfo | None) -> VectorStore:
        """A writable store over the new generation ``number``, holding a copy of generation ``base`` (or empty);
        ``info`` is what a new, empty one is built with (None: the first open decides)."""

    def stage_snapshot(self, number: int, source: Path) -> VectorStore:
        """A store over the new generation ``number``, loaded from the snapshot folder ``source``."""

    def peek(self, number: int) -> AbstractContextManager[VectorStore]:
        """A store to read generation ``number`` with, while readers may hold it."""

    def stored_info(self, number: int) -> IndexInfo | None:
        """What generation ``number`` was built with (None: unknown)."""

    def refresh(self) -> None:
        """Move this process's readers to the generation just published."""

    def unpublished(self, change: Callable[[VectorStore], T]) -> T:
        """Run ``change`` on the store as it is, when nothing is published yet."""


def builds_of(store: object) -> Builds | None:
    """The generation backend of ``store``, or None for a store written in place."""
    builds: Builds | None = getattr(store, "builds", None)
    return builds


class EdgeBuilds:
    """Generations of the embedded engine: whole index folders side by side."""

    def __init__(self, store: FollowingStore) -> None:
        self.store = store

    @property
    def generations(self) -> GenerationsBase:
        return self.store.generations

    def stage(self, number: int, base: int | None, info: IndexInfo | None) -> VectorStore:
        gens = self.store.generations
        path = gens.path(number)
        if base is not None:
            started = time.perf_counter()
            gens.copy_index(base, path)
            log.info("copied generation %d into %d in %.2f s", base, number, time.perf_counter() - started)
        return self.store.make(path)

    def stage_snapshot(self, number: int, source: Path) -> VectorStore:
        path = self.store.generations.path(number)
        shutil.copytree(source, path, dirs_exist_ok=True)
        return self.store.make(path)

    @contextmanager
    def peek(self, number: int) -> Iterator[VectorStore]:
        # The engine lets one loader per process hold a folder (a reader may hold this one): read a copy, which
        # ``sweep`` deletes when the process dies before it does.
        gens = self.store.generations
        scratch = gens.root / f"{BASELINE}{number}"
        shutil.rmtree(scratch, ignore_errors=True)
        gens.copy_index(number, scratch)
        other = self.store.make(scratch)
        try:
            yield other
        finally:
            other.close()
            shutil.rmtree(scratch, ignore_errors=True)

    def stored_info(self, number: int) -> IndexInfo | None:
        try:
            data: Any = json.loads((self.store.generations.path(number) / "index.json").read_text(encoding="utf-8"))
            return info_from_json(data)
        except (OSError, ValueError):
            return None

    def refresh(self) -> None:
        self.store.refresh()

    def unpublished(self, change: Callable[[VectorStore], T]) -> T:
        return self.store._run(change)
