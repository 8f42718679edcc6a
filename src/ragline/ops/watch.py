"""Keep the index current: run the incremental ingest again whenever the watched folders change.

Polling, not OS notifications: a fingerprint of every file (path, size, modification time) is compared
every ``interval`` seconds, which works the same on every platform and on network mounts. The ingest
itself decides what really changed (content hashes), so a touched but unchanged file costs one read.
Web sources cannot be fingerprinted: with any among the paths, every poll runs the ingest (a scheduled
re-crawl), so give those a long interval.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from ragline.errors import RaglineError
from ragline.parse import kind_for
from ragline.sources.files import SKIPPED_DIRS

log = logging.getLogger(__name__)

T = TypeVar("T")
Fingerprint = dict[str, tuple[int, int]]  # path -> (size, mtime in ns)
# Files a page may literalinclude or include: a change to one can change a page (parse/includes.py).
INCLUDABLE_SUFFIXES = frozenset(
    ".py .pyi .yaml .yml .json .toml .cfg .ini .sh .bash .txt .rst .md .inc .js .ts .java .cpp .cc .h .hpp .go"  # noqa: SIM905
    " .rs .sql .r .scala .proto .dockerfile".split()
)


def is_url(path: str | Path) -> bool:
    return str(path).startswith(("http://", "https://"))


def fingerprint(paths: Sequence[str | Path], include_paths: Sequence[Path] = ()) -> Fingerprint:
    """(size, mtime) of every file ingest would read under ``paths`` (the same walk, the same skips), and of
    every file its pages could include: code and text files under those folders and under ``include_paths``."""
    local = [Path(p) for p in paths if not is_url(p)]
    files = [p for p in local if not p.is_dir()]  # named files: ingest reads (or reports) each of them
    for folder in [*local, *include_paths]:
        if Path(folder).is_dir():
            files += _watched(Path(folder))
    out: Fingerprint = {}
    for path in files:
        try:
            st = path.stat()
        except OSError:  # removed while walking (or named but missing): the next poll sees it
            continue
        out[str(path)] = (st.st_size, st.st_mtime_ns)
    return out


def _watched(root: Path) -> list[Path]:
    """One walk with ingest's skips: the documents ingest reads and the files a page can include."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".") and d not in SKIPPED_DIRS]
        found += [
            Path(dirpath) / n
            for n in filenames
            if not n.startswith(".") and (kind_for(n) is not None or Path(n).suffix.lower() in INCLUDABLE_SUFFIXES)
        ]
    return found


def watch(
    paths: Sequence[str | Path],
    run: Callable[[], T],
    *,
    interval: float,
    on_result: Callable[[T], None],
    polls: int | None = None,
    sleep: Callable[[float], None] = time.sleep,
    include_paths: Sequence[Path] = (),
) -> int:
    """Run ``run()`` now, then again after each poll that sees a change; returns how many runs were made.

    Stops after ``polls`` polls (None: never; Ctrl-C raises KeyboardInterrupt out of the sleep or the run).
    A run that fails with a RaglineError (the index is busy, a server is down) is logged and retried at
    the next poll, so a watcher survives a passing fault.
    """
    if interval <= 0:
        raise ValueError("the watch interval must be positive")
    always = any(is_url(p) for p in paths)
    seen: Fingerprint | None = None
    runs = 0
    done = 0
    while True:
        current = fingerprint(paths, include_paths)
        if seen is None or current != seen or always:
            try:
                result = run()
            except RaglineError as e:
                log.error("the ingest failed (retrying at the next poll): %s", e)
                seen = None
            else:
                seen = current  # taken before the run: a change during the run shows at the next poll
                on_result(result)
            runs += 1
        if polls is not None and done >= polls:
            return runs
        sleep(interval)
        done += 1
