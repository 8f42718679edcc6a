"""The embedded index as its readers see it: the published generation, followed as it changes.

Each use checks the pointer at most once a second (one ``stat``). When another generation was published, the
thread that noticed loads it, checks it against the embedding model this store was opened with, and swaps it
in for the next requests; searches already running finish on the old engine, which closes when the last of
them returns. A generation that does not load is not served: the old one stays, and ``served()`` says why.

Writes (an ingest called directly on these components, a restore) go to the generation served; the
commands build new generations instead (``ragline.ops.generations``).

A Ray Serve replica reads every generation from a private copy (the engine lets one process load a folder) and
looks at the pointer from a thread of its own (``watch``), so a request never waits for a copy; it records what
it serves in the data dir for ``/readyz`` and ``ragline status`` (``ragline.store.readers``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from ragline.errors import EmptyIndexError, StoreError
from ragline.records import Chunk, Hit
from ragline.store.base import Filters, Fusion, IndexInfo, SearchMode, StoredDocument
from ragline.store.builds import EdgeBuilds
from ragline.store.edge import EdgeStore
from ragline.store.generations import Generations
from ragline.store.readers import PrivateCopy, ReaderRecord

log = logging.getLogger(__name__)

CHECK_INTERVAL = 1.0  # seconds between looks at the pointer
T = TypeVar("T")


@dataclass(slots=True)
class _Held:
    number: int | None  # None: a data dir with no index yet (its first index is written in place)
    store: EdgeStore
    users: int = 0
    retired: bool = False
    scratch: PrivateCopy | None = None  # a private copy read instead (another process holds the generation)
    loaded: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    def close(self) -> None:
        try:
            self.store.close()
        except Exception as e:  # a generation pruned under a retired reader: nothing left to flush
            log.debug("closing generation %s: %s", self.number, e)
        if self.scratch is not None:
            self.scratch.release()


class FollowingStore:
    """A VectorStore over the published generation of ``data_dir``, moving to each new one as it is published."""

    kind = "EdgeStore"  # snapshots record the engine store, so they restore across both

    def __init__(self, data_dir: Path, make: Callable[[Path], EdgeStore], *, interval: float = CHECK_INTERVAL) -> None:
        self.generations = Generations(data_dir)
        self._make = make
        self._interval = interval
        self._private: str | None = None  # read every generation from a copy in a temporary folder so named
        self._record: ReaderRecord | None = None  # where a watching reader records what it serves
        self._watcher: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()  # guards _held and the users counts
        self._switching = threading.Lock()  # one thread loads a new generation; the others keep serving
        self._held: _Held | None = None
        self._want: IndexInfo | None = None  # what open() asked for: every generation served is checked against it
        self._stamp: tuple[int, int] | None = None
        self._checked = 0.0
        self._refused: tuple[int, str] | None = None  # a published generation that failed to load, and why

    # -- following the pointer ---------------------------------------------------------------------

    def served(self) -> dict[str, Any]:
        """The generation served, the one published (they differ when it failed to load), and why."""
        held = self._held
        out: dict[str, Any] = {"served": held.number if held else None, "published": self.generations.published()}
        if held is not None and self._record is not None:
            out["loaded"] = held.loaded
        if self._refused is not None:
            out["refused"] = {"generation": self._refused[0], "error": self._refused[1]}
        return out

    def refresh(self) -> None:
        """Look at the pointer now (after this process published), rather than within a second."""
        self._checked = 0.0
        self._follow()

    def watch(self, *, copies: str | None = None, record: str | None = None) -> None:
        """Look at the pointer from a thread of this store's, once per interval, instead of on each use: the
        new generation is loaded beside the requests, which never wait for it. ``copies``: read every
        generation from a private copy, in a temporary folder whose name starts so (call before any use).
        ``record``: keep a record of what this reader serves under this name (``ragline.store.readers``)."""
        if copies is not None:
            if self._held is not None:
                raise StoreError("read copies: choose it before the store is used")
            self._private = copies
        if record is not None:
            self._record = ReaderRecord(self.generations.root, record)
        if self._watcher is not None:
            return
        self._stop.clear()

        def loop() -> None:
            while not self._stop.wait(self._interval):
                try:
                    self._follow()
                    if self._record is not None and self._held is not None:
                        self._record.update(self.served())
                except Exception:  # never let the watcher die: the next look may succeed
                    log.exception("following the published generation failed")

        self._watcher = threading.Thread(target=loop, name="ragline-generation-watch", daemon=True)
        self._watcher.start()

    def _follow(self) -> None:
        now = time.monotonic()
        if self._held is None or now - self._checked < self._interval:
            return
        self._checked = now
        stamp = self.generations.pointer_stamp()
        if stamp == self._stamp or not self._switching.acquire(blocking=False):
            return
        try:
            self._switch(stamp)
        finally:
            self._switching.release()

    def _switch(self, stamp: tuple[int, int] | None) -> None:
        try:
            number = self.generations.published()
        except Exception as e:  # an unreadable pointer: keep serving, say so
            self._refused = (-1, str(e))
            log.warning("cannot read the published generation: %s; serving the one loaded", e)
            return
        held = self._held
        if held is None or number is None or number == held.number:
            self._stamp = stamp
            if number is not None and held is not None and number == held.number:
                self._refused = None  # the one served is published again (a rollback past a refused one)
            return
        new: _Held | None = None
        try:
            new = self._load(number)
            if self._want is not None:
                new.store.open(self._want)  # checks the embedding model
        except Exception as e:
            if new is not None:
                new.close()  # and its private copy, if any
            self._refused, self._stamp = (number, str(e)), stamp
            log.warning("generation %d does not load (%s); still serving generation %s", number, e, held.number)
            return
        with self._lock:
            old, self._held = self._held, new
            self._refused, self._stamp = None, stamp
            if old is not None:
                old.retired = True
                if old.users == 0:
                    old.close()
        log.info("now serving index generation %d (was %s)", number, old.number if old else None)

    @contextmanager
    def _use(self) -> Iterator[EdgeStore]:
        """The store of the generation served, held until the block ends (a newer one may be swapped in
        meanwhile: this one closes when its last user leaves)."""
        self._follow()
        with self._lock:
            if self._held is None:
                self._stamp, self._checked = self.generations.pointer_stamp(), time.monotonic()
                self._held = self._load(self.generations.published())
            held = self._held
            held.users += 1
        try:
            yield held.store
        finally:
            with self._lock:
                held.users -= 1
                last = held.retired and held.users == 0
            if last:
                held.close()

    def _load(self, number: int | None) -> _Held:
        """Load generation ``number``; when another process holds it (a server), read a private copy."""
        if self._private is not None:
            return self._load_copy(number, self._private)
        path = self.generations.path(number) if number is not None else self.generations.layout.index
        store = self._make(path)
        try:
            store.count()  # loads the shard now, not on a request
            return _Held(number, store)
        except StoreError as e:
            store.close()
            if "WAL" not in str(e) or number is None:
                raise
        log.info("generation %d is held by another process: reading a copy", number)
        return self._load_copy(number, "ragline-reader-")

    def _load_copy(self, number: int | None, prefix: str) -> _Held:
        """Generation ``number`` read from a private copy (``<tmp>/<prefix><pid>-*``), loaded before it is served."""
        if number is None:
            raise EmptyIndexError(f"no index in {self.generations.layout.root}: run `ragline ingest PATH` first")
        started = time.perf_counter()
        scratch = PrivateCopy(prefix)
        try:
            self.generations.copy_index(number, scratch.path / "index")
            held = _Held(number, self._make(scratch.path / "index"), scratch=scratch)
        except BaseException:
            scratch.release()
            raise
        try:
            held.store.count()  # loads the shard now, not on a request
        except BaseException:
            held.close()
            raise
        log.info("copied and loaded generation %d in %.2f s", number, time.perf_counter() - started)
        return held

    def _run(self, call: Callable[[EdgeStore], T]) -> T:
        with self._use() as store:
            return call(store)

    def _write(self, call: Callable[[EdgeStore], T]) -> T:
        """Write to the generation served, in place; never to a private copy (the write would be lost)."""
        with self._use() as store:
            held = self._held
            if held is not None and held.store is store and held.scratch is not None:
                raise StoreError(
                    f"generation {held.number} is held by another process: change it with `ragline ingest` or "
                    "`ragline delete`, which build a new generation"
                )
            return call(store)

    # -- VectorStore -------------------------------------------------------------------------------

    @property
    def where(self) -> str:
        held = self._held
        return held.store.where if held else str(self.generations.published_path())

    def open(self, info: IndexInfo, *, recreate: bool = False) -> None:
        self._want = info
        self._write(lambda s: s.open(info, recreate=recreate)) if recreate else self._run(lambda s: s.open(info))

    def info(self) -> IndexInfo | None:
        return self._run(lambda s: s.info())

    def upsert(self, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        self._write(lambda s: s.upsert(chunks, vectors))

    def delete_document(self, doc_id: str, *, keep_hash: str | None = None) -> None:
        self._write(lambda s: s.delete_document(doc_id, keep_hash=keep_hash))

    def delete(self, filters: Filters) -> int:
        return self._write(lambda s: s.delete(filters))

    def snapshot(self, target: Path) -> None:
        self._run(lambda s: s.snapshot(target))

    def restore(self, source: Path, check: Callable[[Any], None] | None = None) -> None:
        """Publish a copy of ``source`` as a new generation kept on purpose (see ops.generations)."""
        from ragline.ops.generations import restore_generation

        restore_generation(self.builds, source, check)

    def derive(self, change: Callable[[Any], T], note: str, *, keep: Callable[[T], bool]) -> T:
        """Apply ``change`` to a copy of the published generation and publish the copy when ``keep`` says so."""
        from ragline.ops.generations import derive_generation

        return derive_generation(self.builds, change, note, keep=keep)

    @property
    def builds(self) -> EdgeBuilds:
        """How new generations are made (ragline.ops.generations)."""
        return EdgeBuilds(self)

    def make(self, path: Path) -> EdgeStore:
        """A store over another generation's folder, with this store's layout."""
        return self._make(path)

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
        return self._run(
            lambda s: s.search(
                vector, k, filters=filters, score_threshold=score_threshold, text=text, mode=mode, fusion=fusion
            )
        )

    def documents(self) -> Iterator[StoredDocument]:
        with self._use() as store:
            yield from store.documents()

    def count(self, filters: Filters | None = None) -> int:
        return self._run(lambda s: s.count(filters))

    def points(self, filters: Filters | None = None) -> Iterator[tuple[str, dict[str, Any]]]:
        with self._use() as store:
            yield from store.points(filters)

    def flush(self) -> None:
        if self._held is not None:
            self._run(lambda s: s.flush())

    def close(self) -> None:
        """Release the generation served (and stop watching); the next use opens the published one again."""
        if self._watcher is not None:
            self._stop.set()
            self._watcher.join(timeout=30)
            self._watcher = None
        if self._record is not None:
            self._record.remove()
        with self._lock:
            held, self._held = self._held, None
            if held is None:
                return
            held.retired = True
            last = held.users == 0
        if last:
            held.close()

    def __enter__(self) -> FollowingStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def served_generation(store: object) -> dict[str, Any] | None:
    """The generation a store serves and the one published (None for a store without generations)."""
    served = getattr(store, "served", None)
    return served() if callable(served) else None
