"""Private copies of a local index for one serving process.

The embedded Qdrant engine (and qdrant-client's local mode) lets one process open an index folder at a time,
so each replica that retrieves serves its own copy. On the embedded index the replica copies each generation
as it is published and moves to it (``follow_published``); a qdrant-client local index is copied once, when
the replica starts (``private_index``); a Qdrant server is shared by every replica and used as is. Copies live
in the temporary folder under the owner's pid, so the copies of replicas that were killed are swept by the
next one.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

from ragline.config import Settings
from ragline.errors import EmptyIndexError
from ragline.store.base import VectorStore
from ragline.store.following import FollowingStore
from ragline.store.generations import META, Generations

log = logging.getLogger(__name__)

_SNAPSHOT_PREFIX = "ragline-replica-"


def follow_published(store: VectorStore) -> bool:
    """On the embedded index: read each published generation from a private copy of this process's, and
    watch the pointer from a thread (False: not an index of generations, nothing done)."""
    if not isinstance(store, FollowingStore):
        return False
    _sweep_stale_copies()
    store.watch(copies=f"{_SNAPSHOT_PREFIX}{os.getpid()}-")
    return True


def private_index(settings: Settings) -> tuple[Settings, Path | None]:
    """Settings pointing at this replica's own copy of a local index, and the copy's folder to delete.

    A Qdrant server is shared by every replica, so it is used as is.
    """
    if settings.qdrant.url:
        return settings, None
    _sweep_stale_copies()
    root = Path(tempfile.mkdtemp(prefix=f"{_SNAPSHOT_PREFIX}{os.getpid()}-"))
    started = time.perf_counter()
    try:
        if settings.qdrant.path:  # qdrant-client local mode locks its folder too
            target = root / "qdrant"
            shutil.copytree(settings.qdrant.path, target)
            copied = settings.model_copy(update={"qdrant": settings.qdrant.model_copy(update={"path": str(target)})})
        else:
            # The generation published now (a replica follows later ones with follow_published instead).
            published = Generations(settings.data_dir).published_path()
            if not published.is_dir():
                raise EmptyIndexError(f"no index in {settings.data_dir}: run `ragline ingest PATH` first")
            shutil.copytree(published, root / "index", ignore=shutil.ignore_patterns(META))
            copied = settings.model_copy(update={"data_dir": root})
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    log.info("copied the index for this replica in %.1f s", time.perf_counter() - started)
    return copied, root


def _sweep_stale_copies() -> None:
    """Delete copies left by replicas that were killed (their __del__ never ran)."""
    pattern = re.compile(rf"^{_SNAPSHOT_PREFIX}(\d+)-")
    for entry in Path(tempfile.gettempdir()).glob(f"{_SNAPSHOT_PREFIX}*"):
        match = pattern.match(entry.name)
        if match and not _alive(int(match.group(1))):
            shutil.rmtree(entry, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
