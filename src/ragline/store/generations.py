"""Index generations: the policy every backend shares (:class:`GenerationsBase`: numbering, records, publish,
sweep, prune, rollback), and the embedded engine's generations (:class:`Generations`): whole index folders side
by side, and a pointer to the one served. A Qdrant server's are collections behind an alias
(:mod:`ragline.store.aliases`).

```
<data_dir>/generations/
  <N>/                 one whole index (the engine's ``shard/`` and ``index.json``) and ``generation.json``
  PUBLISHED            the number of the generation readers serve, replaced atomically
  .lock                held (flock) by the process building, publishing or pruning
  readers/             what each long-running reader serves (ragline.store.readers)
```
A data dir made before generations holds its index in ``<data_dir>/index/``: that folder is generation 1
(read in place, never copied), until a later generation replaces it and pruning removes it.

Readers never see a half-built index: an ingest builds generation N+1 in its own folder while N is served,
and publishing is one ``os.replace`` of ``PUBLISHED``. The lock is released by the kernel when its holder
dies, so whoever takes it next knows every generation still ``building`` was left by a crash.

Crash safety is the shared policy's, for every backend: the pointer moves before the record says
``published`` (``sweep`` records a generation published but not marked so), a generation is deleted so that
a crash never leaves a half-deleted one looking whole (here: renamed to ``.trash-*`` first), and ``sweep``
removes what a crash left (here also a gate's ``.baseline-*`` copy and the pointer's temporary file); publish
and prune log their step (``generation N: publish``, ``generation K: prune``).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ragline.errors import StoreError
from ragline.layout import DataLayout
from ragline.store.files import atomic_write as _atomic_write  # this module's name for it: kill points patch it
from ragline.store.files import copy_sparse, disk_bytes, file_lock

log = logging.getLogger(__name__)

GENERATIONS_DIR = "generations"
POINTER = "PUBLISHED"
META = "generation.json"
TRASH = ".trash-"  # a generation being deleted
BASELINE = ".baseline-"  # a temporary copy of the published generation, measured for a gate
KEEP = 2  # full generations kept after a publish: the published one and the one before it (for rollback)

BUILDING, PUBLISHED, KEPT, FAILED = "building", "published", "kept", "failed"


@dataclass(slots=True)
class Generation:
    """What one generation holds and how it came to be (``generation.json``)."""

    number: int
    state: str = BUILDING  # building | published (passed, served now or before) | kept (never pruned) | failed
    created: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    base: int | None = None  # the generation it was copied from (None: built from empty)
    sources: list[str] = field(default_factory=list)
    model: str | None = None
    chunking: dict[str, Any] = field(default_factory=dict)
    documents: int = 0
    chunks: int = 0
    gate: dict[str, Any] | None = None
    note: str = ""  # what made it: "ingest", "delete ...", "snapshot NAME", "adopted"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Generation:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


class GenerationsBase(ABC):
    """The policy shared by every kind of generation (numbering, publishing, sweeping, pruning, rollback);
    a backend supplies where generations live and how its pointer moves."""

    # -- where (the backend) -----------------------------------------------------------------------

    @abstractmethod
    def numbers(self) -> list[int]:
        """Every generation there is, oldest first."""

    @abstractmethod
    def published(self) -> int | None:
        """The generation readers serve, or None."""

    @abstractmethod
    def read(self, number: int) -> Generation: ...

    @abstractmethod
    def write(self, gen: Generation) -> None: ...

    @abstractmethod
    def locked(self) -> AbstractContextManager[None]:
        """Hold the right to build, publish and prune; another holder makes this fail at once."""

    @abstractmethod
    def holds_index(self, number: int) -> bool:
        """Does generation ``number`` hold a whole index (one that can be published)?"""

    @abstractmethod
    def remove(self, number: int) -> None:
        """Delete generation ``number`` and its record, so that a crash part-way never leaves a generation
        that looks whole (rollback could publish it)."""

    @abstractmethod
    def point(self, number: int) -> None:
        """Make ``number`` the generation readers serve, in one atomic step."""

    @abstractmethod
    def leftovers(self) -> None:
        """Delete what a process that died can leave beside the generations themselves (call under the lock)."""

    @abstractmethod
    def location(self, number: int) -> str:
        """Where generation ``number`` lives, for people."""

    def size(self, number: int) -> int | None:
        """Bytes generation ``number`` takes, when known."""
        return None

    def adopt(self) -> int | None:
        """Turn an index made before generations into one (call under the lock); the number, or None."""
        return None

    # -- the policy --------------------------------------------------------------------------------

    def all(self) -> list[Generation]:
        return [self.read(n) for n in self.numbers()]

    def new(self, **fields: Any) -> Generation:
        """A new, empty generation numbered after every other (call under the lock)."""
        number = max([*self.numbers(), self.published() or 0, 0]) + 1
        gen = Generation(number, **fields)
        self.write(gen)
        return gen

    def publish(self, number: int) -> None:
        """Point readers at generation ``number`` (call under the lock).

        The pointer moves before the record says ``published``: a crash between the two leaves the pointer on
        a whole generation whose record ``sweep`` corrects, never a record claiming a publish that did not happen.
        """
        if not self.holds_index(number):
            raise StoreError(f"generation {number} holds no index in {self.location(number)}")
        gen = self.read(number)
        log.info("generation %d: publish", number)
        self.point(number)
        if gen.state != KEPT:
            gen.state = PUBLISHED
            self.write(gen)

    def sweep(self) -> list[int]:
        """Clean up after a process that died while changing generations (call under the lock): delete the
        generations it left ``building`` and its other leftovers, and mark ``published`` a generation it
        published but did not record so. Returns the numbers deleted."""
        self.leftovers()
        published, swept = self.published(), []
        for gen in self.all():
            if gen.state != BUILDING:
                continue
            if gen.number == published:
                gen.state = PUBLISHED
                self.write(gen)
            else:
                self.remove(gen.number)
                swept.append(gen.number)
        return swept

    def prune(self, keep: int = KEEP) -> list[int]:
        """Delete all but the published generation and the newest ``keep - 1`` other published ones; kept
        generations stay (call under the lock). Returns the numbers deleted."""
        current = self.published()
        older = [g for g in self.all() if g.number != current and g.state == PUBLISHED]
        spare = {g.number for g in sorted(older, key=lambda g: g.number)[-(keep - 1) :]} if keep > 1 else set()
        deleted = []
        for gen in self.all():
            if gen.number == current or gen.state in (KEPT, BUILDING) or gen.number in spare:
                continue
            log.info("generation %d: prune", gen.number)
            self.remove(gen.number)
            deleted.append(gen.number)
        return deleted

    def previous(self) -> int | None:
        """The newest generation published before the current one, still there (what rollback publishes)."""
        current = self.published()
        candidates = [
            g.number
            for g in self.all()
            if g.number != current and g.state in (PUBLISHED, KEPT) and self.holds_index(g.number)
        ]
        below = [n for n in candidates if current is None or n < current]
        return max(below or candidates, default=None)


class Generations(GenerationsBase):
    """The generations of one data dir's embedded index; cheap to construct, touches nothing until asked."""

    def __init__(self, data_dir: Path) -> None:
        self.layout = DataLayout(data_dir)
        self.root = self.layout.root / GENERATIONS_DIR
        self.pointer = self.root / POINTER

    # -- where -------------------------------------------------------------------------------------

    def path(self, number: int) -> Path:
        """The folder of generation ``number`` (generation 1 of an older data dir is ``<data_dir>/index``)."""
        folder = self.root / str(number)
        if number == 1 and not folder.exists() and self.layout.index.is_dir():
            return self.layout.index
        return folder

    def location(self, number: int) -> str:
        return str(self.path(number))

    def size(self, number: int) -> int | None:
        return disk_bytes(self.path(number))

    def numbers(self) -> list[int]:
        """Every generation on disk, oldest first."""
        found = {int(p.name) for p in self.root.glob("*") if p.name.isdigit() and p.is_dir()}
        if self.layout.index.is_dir():
            found.add(1)
        return sorted(found)

    def published(self) -> int | None:
        """The generation readers serve: the pointer, else an older data dir's index, else None."""
        try:
            text = self.pointer.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            return 1 if self.layout.index.is_dir() else None
        except OSError as e:
            raise StoreError(f"cannot read {self.pointer}: {e}") from e
        if not text.isdigit():
            raise StoreError(f"{self.pointer} holds {text!r}, not a generation number")
        return int(text)

    def published_path(self) -> Path:
        """The folder readers serve now (``<data_dir>/index`` when nothing was ever published)."""
        number = self.published()
        return self.path(number) if number is not None else self.layout.index

    def pointer_stamp(self) -> tuple[int, int] | None:
        """A cheap fingerprint of the pointer (one stat): it changes whenever a generation is published."""
        try:
            st = os.stat(self.pointer)
        except FileNotFoundError:
            return None
        return st.st_ino, st.st_mtime_ns

    def holds_index(self, number: int) -> bool:
        return (self.path(number) / "index.json").is_file()

    # -- records -----------------------------------------------------------------------------------

    def read(self, number: int) -> Generation:
        try:
            data = json.loads((self.path(number) / META).read_text(encoding="utf-8"))
            return Generation.from_json(data)
        except (OSError, ValueError, TypeError):
            # An older data dir's index, or a record lost to a crash: what is known from the folder alone.
            adopted = number == 1 and self.path(1) == self.layout.index  # an older data dir's index: it was served
            state = PUBLISHED if adopted or number == self.published() else FAILED
            return Generation(number, state=state, note="adopted" if adopted else "")

    def write(self, gen: Generation) -> None:
        folder = self.path(gen.number)
        folder.mkdir(parents=True, exist_ok=True)
        _atomic_write(folder / META, json.dumps(gen.to_json(), indent=2))

    # -- changes (hold the lock) -------------------------------------------------------------------

    def locked(self) -> AbstractContextManager[None]:
        """Hold the data dir's generation lock; another holder makes this fail at once, naming the cause."""
        return file_lock(
            self.root / ".lock", f"another ragline process is building or publishing a generation in {self.root}"
        )

    def copy_index(self, source: int, target: Path) -> None:
        """Copy generation ``source``'s index files (shard and index.json, not its record) into ``target``."""
        src = self.path(source)
        target.mkdir(parents=True, exist_ok=True)
        for entry in src.iterdir():
            if entry.name == META or entry.name.startswith("."):
                continue
            if entry.is_dir():
                shutil.copytree(entry, target / entry.name, copy_function=copy_sparse)
            else:
                copy_sparse(entry, target / entry.name)

    def point(self, number: int) -> None:
        """One atomic replace of the pointer file."""
        _atomic_write(self.pointer, f"{number}\n")

    def remove(self, number: int) -> None:
        """Renamed out of sight first (atomic), so a crash while deleting leaves trash for ``sweep``."""
        folder = self.path(number)
        if not folder.exists():
            return
        trash = self.root / f"{TRASH}{number}-{os.getpid()}"
        shutil.rmtree(trash, ignore_errors=True)
        try:
            os.rename(folder, trash)
        except OSError:  # another file system (a mount): deleted where it is
            trash = folder
        shutil.rmtree(trash, ignore_errors=True)

    def leftovers(self) -> None:
        """Trash, a gate's baseline copy and the pointer's temporary file."""
        for entry in self.root.glob(".*"):
            if entry.name.startswith((TRASH, BASELINE)):
                shutil.rmtree(entry, ignore_errors=True)
            elif entry.name.startswith(f".{POINTER}-"):
                entry.unlink(missing_ok=True)
