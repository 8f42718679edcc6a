"""File primitives of generations kept on disk: a lock its holder's death releases, an atomic replace that
survives a power cut, and copies that keep the engine's sparse files sparse."""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ragline.errors import StoreError


@contextmanager
def file_lock(path: Path, busy: str) -> Iterator[None]:
    """Hold an flock on ``path`` (released by the kernel when the holder dies); held elsewhere: StoreError(busy)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StoreError(busy) from None
        yield
    finally:
        os.close(fd)  # closing releases the lock


def disk_bytes(path: Path) -> int:
    """Bytes ``path`` takes on disk (the engine preallocates files it has not filled: those holes are free)."""
    return sum(p.stat().st_blocks * 512 for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def copy_sparse(src: str | Path, dst: str | Path) -> None:
    """Copy a file's data only, leaving its holes as holes: the engine preallocates 32 MB files it fills
    slowly, and a plain copy would write every one of them out in full."""
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        size = os.fstat(fin.fileno()).st_size
        offset = 0
        while offset < size:
            try:
                start = os.lseek(fin.fileno(), offset, os.SEEK_DATA)
            except OSError:  # no data past offset (ENXIO)
                break
            end = os.lseek(fin.fileno(), start, os.SEEK_HOLE)
            position = start
            while position < end:
                block = os.pread(fin.fileno(), min(end - position, 1 << 20), position)
                if not block:
                    break
                os.pwrite(fout.fileno(), block, position)
                position += len(block)
            offset = end
        fout.truncate(size)
    shutil.copystat(src, dst)


def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so a reader sees the old file or the new one, and it survives a power cut."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
