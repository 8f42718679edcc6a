"""What readers of an index leave on disk: private copies of a generation, and what each long-running reader serves.

**Private copies** live in the temporary folder as ``<prefix><pid>-XXXXXXXX/`` (a Ray Serve replica's, or a
reader's that found its generation held by another process). The owner holds a lock on ``.owner`` inside while
the copy lives. A copy is stale when its owner is gone: its pid is not alive here *and* its lock can be taken
(the lock keeps a copy of a process in another pid namespace sharing the folder safe; the pid keeps a copy safe
in the moment between its folder and its lock). Making a copy deletes the stale copies of the same prefix, so
copies of readers killed with SIGKILL do not pile up.

**Reader records** live in ``<data_dir>/generations/readers/<name>.json``, one per reader that watches the
pointer from a thread (every Ray Serve replica that retrieves): the generation it serves and since when, the one
it refused and why, its pid and host, and a heartbeat its watcher refreshes. ``/readyz``, ``/metrics`` and
``ragline status`` read them; a record whose owner died on this host is deleted, one whose heartbeat is older
than ``STALE`` seconds is ignored.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import shutil
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

OWNER = ".owner"
READERS = "readers"
HEARTBEAT = 5.0  # seconds between a reader's heartbeats
STALE = 30.0  # a record without a heartbeat for this long is not reported


# -- private copies ----------------------------------------------------------------------------------------------


class PrivateCopy:
    """A folder in the temporary folder that this process owns until ``release()`` (which deletes it)."""

    def __init__(self, prefix: str) -> None:
        sweep_copies(prefix)
        self.path = Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-"))
        self._fd: int | None = os.open(self.path / OWNER, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def release(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def sweep_copies(prefix: str) -> list[Path]:
    """Delete the copies named ``<prefix><pid>-*`` whose owner is gone; returns them."""
    pattern = re.compile(rf"^{re.escape(prefix)}(\d+)-")
    removed = []
    for entry in Path(tempfile.gettempdir()).glob(f"{prefix}*"):
        match = pattern.match(entry.name)
        if match is None or not entry.is_dir() or alive(int(match.group(1))):
            continue
        try:
            fd = os.open(entry / OWNER, os.O_RDONLY)
        except FileNotFoundError:
            fd = None  # its owner died before taking the lock
        except OSError:
            continue
        try:
            if fd is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # a live owner the pid does not show (another pid namespace)
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
        finally:
            if fd is not None:
                os.close(fd)
    if removed:
        log.info("deleted %d private index copies left by processes that died", len(removed))
    return removed


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this machine (as this process sees it)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# -- reader records ----------------------------------------------------------------------------------------------


class ReaderRecord:
    """The record of one reader: written when what it serves changes, and on each heartbeat."""

    def __init__(self, generations_root: Path, name: str) -> None:
        self.name = name
        self.path = generations_root / READERS / f"{re.sub(r'[^A-Za-z0-9._-]', '_', name)}.json"
        self._written: dict[str, Any] | None = None
        self._beat = 0.0

    def update(self, report: dict[str, Any]) -> None:
        """Record ``report`` (what the reader serves) when it changed or a heartbeat is due; never raises."""
        now = time.time()
        if report == self._written and now - self._beat < HEARTBEAT:
            return
        body = {**report, "reader": self.name, "pid": os.getpid(), "host": socket.gethostname(), "heartbeat": now}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}")
            tmp.write_text(json.dumps(body), encoding="utf-8")
            os.replace(tmp, self.path)
        except OSError as e:  # a read-only data dir: the reader serves on, unreported
            log.debug("cannot write the reader record %s: %s", self.path, e)
            return
        self._written, self._beat = dict(report), now

    def remove(self) -> None:
        with contextlib.suppress(OSError):
            self.path.unlink()


def live_readers(generations_root: Path) -> list[dict[str, Any]]:
    """The records of the readers alive now, by name; records of readers that died on this host are deleted."""
    host, now = socket.gethostname(), time.time()
    found = []
    for path in sorted((generations_root / READERS).glob("*.json")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # being replaced, or removed meanwhile
        if record.get("host") == host and not alive(int(record.get("pid", 0))):
            with contextlib.suppress(OSError):
                path.unlink()
            continue
        if now - float(record.get("heartbeat", 0)) > STALE:
            continue
        found.append(record)
    return found


def summarise(readers: list[dict[str, Any]], published: int | None) -> dict[str, Any]:
    """One report for every reader: ``served`` is the oldest generation any of them serves (equal to
    ``published`` once all have moved), ``refused`` the first refusal, and each reader in ``replicas``."""
    replicas = [
        {"replica": r.get("reader"), **{k: r[k] for k in ("served", "loaded", "refused", "host", "pid") if k in r}}
        for r in readers
    ]
    served = [r["served"] for r in readers if r.get("served") is not None]
    out: dict[str, Any] = {"served": min(served) if served else None, "published": published, "replicas": replicas}
    refused = next((r["refused"] for r in readers if r.get("refused")), None)
    if refused is not None:
        out["refused"] = refused
    return out
