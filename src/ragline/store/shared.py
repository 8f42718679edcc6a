"""Engines shared by the stores of one process, by folder: an embedded engine lets one loader per process
hold a folder, so a second store over it must use the first one's engine rather than load its own."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Generic, Protocol, TypeVar


class _Located(Protocol):
    @property
    def path(self) -> Path: ...


E = TypeVar("E", bound=_Located)


class SharedEngines(Generic[E]):
    """The engines of this process by folder, with how many stores hold each."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[Path, tuple[E, int]] = {}

    def acquire(self, path: Path, make: Callable[[], E]) -> E:
        """The engine of ``path``, made on first use; the caller holds it until ``release``."""
        with self._lock:
            key = path.resolve()
            engine, users = self._held.get(key) or (make(), 0)
            self._held[key] = (engine, users + 1)
            return engine

    def hold(self, engine: E) -> E:
        """Hold ``engine``'s folder again after a release: the engine to use (another store may have made a
        new one for the folder meanwhile)."""
        with self._lock:
            key = engine.path.resolve()
            held, users = self._held.get(key, (engine, 0))
            self._held[key] = (held, users + 1)
            return held

    def release(self, engine: E) -> bool:
        """One store lets go; True when no other store of this process holds the engine."""
        with self._lock:
            key = engine.path.resolve()
            held, users = self._held.get(key, (engine, 0))
            if held is not engine:
                return True
            if users <= 1:
                self._held.pop(key, None)
                return True
            self._held[key] = (engine, users - 1)
            return False


C = TypeVar("C")


class SharedClients(Generic[C]):
    """Clients of this process by local folder: qdrant-client's local mode lets one client hold a folder, so
    every store of a process over it (a reader, an ingest's new generation) uses the first one's client."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[str, tuple[C, int]] = {}

    def acquire(self, folder: str, make: Callable[[], C]) -> C:
        """The client of ``folder``, made on first use; the caller holds it until ``release``."""
        with self._lock:
            key = str(Path(folder).resolve())
            client, users = self._held.get(key) or (make(), 0)
            self._held[key] = (client, users + 1)
            return client

    def release(self, folder: str) -> C | None:
        """One store lets go: the client to close when it was the last user, else None."""
        with self._lock:
            key = str(Path(folder).resolve())
            client, users = self._held.pop(key, (None, 0))
            if client is None or users <= 1:
                return client
            self._held[key] = (client, users - 1)
            return None
