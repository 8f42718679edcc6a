"""Faults: an ingest killed with SIGKILL midway and run again ends with exactly the expected chunks; a page that
crashes its parser is reported and skipped while the rest is indexed."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import pytest

from ragline.ingest import local
from ragline.store.edge import EdgeStore
from ragline.store.generations import Generations

from .conftest import components, expected_points, points

pytestmark = pytest.mark.slow

PROGRESS = re.compile(r"indexed (\d+) chunks so far")
# Chunks written before the kill. The in-process engine writes every 16 chunks here; the Ray engine writes
# what each embedding task returns (about one parse task's files), so it is killed at its first write.
KILL_AFTER = {"local": 32, "ray": 1}


def _cli(*args: str, data_dir: Path, batch: int) -> subprocess.Popen[str]:
    env = {**os.environ, "RAGLINE_DATA_DIR": str(data_dir), "RAGLINE_INGEST__EMBED_BATCH": str(batch)}
    return subprocess.Popen(
        [sys.executable, "-m", "ragline.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,  # its own process group: the kill takes any Ray processes it started too
    )


def _kill_group(proc: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def test_parser_crash_is_reported_and_the_rest_indexed(site: Path, tmp_path: Path) -> None:
    comp = components(tmp_path / "data")
    try:
        report = local.ingest([site], comp)
        reasons = {Path(s.source).name: s.reason for s in report.skipped}
        assert reasons["broken.html"].startswith("parser failed: LookupError")
        stored = points(comp)
        assert stored.keys() == expected_points(site, comp).keys()
        assert not any(p["source"].endswith("broken.html") for p in stored.values())
    finally:
        comp.close()


@pytest.mark.parametrize("engine", ["local", "ray"])
def test_sigkill_midway_then_rerun_gives_exactly_the_expected_chunks(engine: str, site: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    proc = _cli("-v", "ingest", str(site), "--engine", engine, data_dir=data, batch=16)
    watchdog = threading.Timer(600, _kill_group, [proc])
    watchdog.start()
    written = 0
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            m = PROGRESS.search(line)
            if m and int(m.group(1)) >= KILL_AFTER[engine]:
                written = int(m.group(1))
                _kill_group(proc)
                break
        proc.wait(timeout=60)
    finally:
        watchdog.cancel()
        _kill_group(proc)
    assert proc.returncode == -signal.SIGKILL and written >= KILL_AFTER[engine]

    comp = components(data)
    expected = expected_points(site, comp)
    per_doc = Counter(expected.values())
    # The kill left nothing published; the commit protocol is checked in the generation the ingest was building.
    with EdgeStore(Generations(data).path(1)) as store:
        partial = dict(store.points())
    assert 0 < len(partial) < len(expected)
    # Every document the interrupted index lists (by its first chunk) is whole: the commit protocol.
    for payload in partial.values():
        if payload["chunk_index"] == 0:
            assert sum(p["doc_hash"] == payload["doc_hash"] for p in partial.values()) == per_doc[payload["doc_hash"]]

    rerun = _cli("ingest", str(site), "--engine", engine, "--json", data_dir=data, batch=16)
    out, err = rerun.communicate(timeout=900)
    assert rerun.returncode == 0, err
    report = json.loads(out)
    assert report["index_chunks"] == len(expected)
    with EdgeStore(Generations(data).published_path()) as store:
        final = dict(store.points())
    assert {pid: p["doc_hash"] for pid, p in final.items()} == expected  # none missing, none extra or stale
