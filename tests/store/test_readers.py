"""What readers leave on disk. Private copies of a held generation: a reader killed with SIGKILL leaves its
`ragline-reader-<pid>-*` copy behind, and the next reader that makes a copy deletes it, never a copy whose owner
lives (by its pid, or by the lock it holds when its pid is not visible here). Reader records: what each
replica serves, reported while its owner lives and beats."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import ragline
from ragline.store.readers import OWNER, STALE, PrivateCopy, ReaderRecord, live_readers, summarise, sweep_copies

HOLD = """
import sys
from ragline.store.readers import PrivateCopy
copy = PrivateCopy("ragline-reader-")
print(copy.path, flush=True)
sys.stdin.read()
"""


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@contextlib.contextmanager
def holder(tmp: Path) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    """A live process owning a private copy in ``tmp`` until the block ends."""
    env = {**os.environ, "TMPDIR": str(tmp)}
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert proc.stdout is not None
        yield proc, Path(proc.stdout.readline().strip())
    finally:
        proc.kill()
        proc.wait(timeout=30)


@pytest.fixture
def tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def test_stale_copies_of_dead_owners_go_live_ones_stay(tmp: Path) -> None:
    with holder(tmp) as (_, live):
        gone = tmp / f"ragline-reader-{dead_pid()}-abc"  # its owner died after taking its lock
        (gone / "index").mkdir(parents=True)
        (gone / OWNER).touch()
        unlocked = tmp / f"ragline-reader-{dead_pid()}-def"  # died before taking it
        unlocked.mkdir()
        # A pid this process cannot see alive, but whose owner holds the lock (another pid namespace).
        hidden = tmp / f"ragline-reader-{dead_pid()}-ghi"
        hidden.mkdir()
        (hidden / OWNER).touch()
        locker = subprocess.Popen(
            [sys.executable, "-c", f"import fcntl,os,sys; fd=os.open({str(hidden / OWNER)!r}, os.O_RDWR); "
             "fcntl.flock(fd, fcntl.LOCK_EX); print('locked', flush=True); sys.stdin.read()"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            assert locker.stdout is not None and locker.stdout.readline().strip() == "locked"
            other = tmp / "ragline-replica-1-xyz"  # another prefix: not this sweep's
            other.mkdir()
            legacy = tmp / "ragline-reader-q1w2e3"  # no owner in its name: never touched
            legacy.mkdir()
            mine = PrivateCopy("ragline-reader-")
            assert mine.path.name.startswith(f"ragline-reader-{os.getpid()}-")
            assert sorted(p.name for p in tmp.iterdir()) == sorted(
                n.name for n in (live, hidden, other, legacy, mine.path)
            )
            assert sweep_copies("ragline-reader-") == []  # its own copy is live too
            mine.release()
            assert not mine.path.exists()
        finally:
            locker.kill()
            locker.wait(timeout=30)
        assert sweep_copies("ragline-reader-") == [hidden]  # once its lock is free and its pid dead


@pytest.mark.slow
def test_a_reader_killed_with_sigkill_leaves_a_copy_the_next_reader_deletes(tmp_path: Path, tmp: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "flux.md").write_text("# Flux\n\n## Calibrating\n\nTurn the blue lever three times.\n", encoding="utf-8")
    data = tmp_path / "data"
    env = {**os.environ, "RAGLINE_DATA_DIR": str(data), "TMPDIR": str(tmp)}
    search = [sys.executable, "-m", "ragline.cli", "-v", "search", "how to calibrate the flux widget", "--json"]
    subprocess.run([sys.executable, "-m", "ragline.cli", "ingest", str(docs)], env=env, check=True, timeout=600)

    # A live reader's copy (made first), and a server that holds the published generation: readers read copies.
    with holder(tmp) as (_, live), ragline.open(data) as server:
        assert server.search("blue lever", 1)
        proc = subprocess.Popen(search, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
        watchdog = threading.Timer(300, proc.kill)
        watchdog.start()
        try:
            assert proc.stderr is not None
            for line in proc.stderr:
                if "copied and loaded generation" in line:  # its copy is made: kill it there
                    proc.send_signal(signal.SIGKILL)
                    break
            proc.wait(timeout=60)
        finally:
            watchdog.cancel()
            proc.kill()
        assert proc.returncode == -signal.SIGKILL
        left = list(tmp.glob(f"ragline-reader-{proc.pid}-*"))
        assert len(left) == 1 and (left[0] / "index").is_dir()

        done = subprocess.run(search, capture_output=True, text=True, env=env, timeout=600)
        assert done.returncode == 0 and "flux.md" in done.stdout, done.stderr
        assert "deleted 1 private index copies" in done.stderr
        assert [p.name for p in tmp.glob("ragline-reader-*")] == [live.name]  # the next reader's went too


def test_reader_records_report_live_readers_and_drop_dead_and_silent_ones(tmp_path: Path) -> None:
    root = tmp_path / "generations"
    one, two = ReaderRecord(root, "replica#one"), ReaderRecord(root, "replica/two")
    one.update({"served": 3, "published": 4, "loaded": "t1"})
    two.update({"served": 4, "published": 4, "loaded": "t2", "refused": {"generation": 5, "error": "bad"}})
    assert {p.name for p in (root / "readers").iterdir()} == {"replica_one.json", "replica_two.json"}
    report = summarise(live_readers(root), 4)
    assert report["served"] == 3 and report["published"] == 4 and report["refused"] == {"generation": 5, "error": "bad"}
    assert [(r["replica"], r["served"]) for r in report["replicas"]] == [("replica#one", 3), ("replica/two", 4)]

    record = json.loads(two.path.read_text())
    dead = {**record, "reader": "dead", "pid": dead_pid()}
    (root / "readers" / "dead.json").write_text(json.dumps(dead))
    silent = {**record, "reader": "silent", "host": "elsewhere", "heartbeat": time.time() - STALE - 1}
    (root / "readers" / "silent.json").write_text(json.dumps(silent))
    assert [r["reader"] for r in live_readers(root)] == ["replica#one", "replica/two"]
    assert not (root / "readers" / "dead.json").exists()  # its owner died on this host
    assert (root / "readers" / "silent.json").exists()  # another host's: not this process's to judge
    one.remove()
    assert summarise(live_readers(root), 4)["served"] == 4 and summarise([], 4) == {
        "served": None,
        "published": 4,
        "replicas": [],
    }
