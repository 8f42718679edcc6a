"""Private copies of a local index for one serving process.

The embedded Qdrant engine (and qdrant-client's local mode) lets one process open an index folder at a time,
so each replica that retrieves serves its own copy. On the embedded index the replica copies each generation
as it is published and moves to it (``follow_published``); a qdrant-client local index is copied once, when
the replica starts (``private_index``); a Qdrant server is shared by every replica and used as is. Copies live
in the temporary folder under the owner's pid (``ragline.store.readers``), so the copies of replicas that
were killed are deleted by the next one.
"""

from __future__ import annotations

import logging
import shutil
import time

from ragline.config import Settings
from ragline.errors import EmptyIndexError
from ragline.store.base import VectorStore
from ragline.store.following import FollowingStore
from ragline.store.generations import META, Generations
from ragline.store.readers import PrivateCopy

log = logging.getLogger(__name__)

_SNAPSHOT_PREFIX = "ragline-replica-"


def follow_published(store: VectorStore, name: str) -> bool:
    """On the embedded index: read each published generation from a private copy of this process's, watch
    the pointer from a thread, and record what is served under ``name`` (False: not an index of generations,
    nothing done)."""
    if not isinstance(store, FollowingStore):
        return False
    store.watch(copies=_SNAPSHOT_PREFIX, record=name)
    return True


def private_index(settings: Settings) -> tuple[Settings, PrivateCopy | None]:
    """Settings pointing at this replica's own copy of a local index, and the copy (to release).

    A Qdrant server is shared by every replica, so it is used as is.
    """
    if settings.qdrant.url:
        return settings, None
    copy = PrivateCopy(_SNAPSHOT_PREFIX)
    root = copy.path
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
        copy.release()
        raise
    log.info("copied the index for this replica in %.1f s", time.perf_counter() - started)
    return copied, copy
