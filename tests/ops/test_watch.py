"""``ingest --watch``: a change under the watched folder triggers one more ingest; Ctrl-C stops cleanly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from ragline.errors import StoreError
from ragline.ops.watch import fingerprint, watch

from .conftest import write_docs


def test_runs_again_only_when_something_changed(tmp_path: Path) -> None:
    docs = write_docs(tmp_path / "docs")
    runs: list[int] = []
    edits = {
        1: lambda: None,  # nothing changed: no run
        2: lambda: (docs / "alpha.md").write_text("# Alpha\n\nnew words\n"),
        3: lambda: (docs / "beta.md").unlink(),
        4: lambda: (docs / "logo.png").write_bytes(b"not a document type"),  # ingest ignores it; so does the watch
        5: lambda: (docs / "old" / "new.md").write_text("# New\n\nnew page\n"),
        6: lambda: (docs / "doc_code").mkdir(),
        7: lambda: (docs / "doc_code" / "example.py").write_text("print('a page may include me')\n"),
        8: lambda: (code / "guide" / "snippet.yaml").write_text("num_replicas: 2\n"),  # under an include path
    }
    code = tmp_path / "code"
    (code / "guide").mkdir(parents=True)
    polls = iter(range(1, 9))

    def sleep(_: float) -> None:
        edits[next(polls)]()

    made = watch(
        [docs], lambda: len(runs), interval=1.0, on_result=runs.append, polls=8, sleep=sleep, include_paths=[code]
    )
    assert made == 6  # the first run, then after polls 2, 3, 5, 7 and 8
    assert runs == [0, 1, 2, 3, 4, 5]


def test_a_failed_run_is_retried_at_the_next_poll(tmp_path: Path) -> None:
    docs = write_docs(tmp_path / "docs")
    attempts = []

    def run() -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise StoreError("the index is busy")
        return "ok"

    results: list[str] = []
    watch([docs], run, interval=1.0, on_result=results.append, polls=2, sleep=lambda _: None)
    assert len(attempts) == 2 and results == ["ok"]  # retried once without any change, then quiet


def test_fingerprint_sees_size_and_time(tmp_path: Path) -> None:
    docs = write_docs(tmp_path / "docs")
    before = fingerprint([docs])
    assert len(before) == 5
    os.utime(docs / "alpha.md", ns=(1, 1))
    assert fingerprint([docs]) != before
    assert fingerprint([docs, "https://docs.example.org/"]) == fingerprint([docs])


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_cli_watch_reingests_a_change_and_stops_on_ctrl_c(tmp_path: Path, sig: signal.Signals) -> None:
    docs = write_docs(tmp_path / "docs")
    env = {**os.environ, "RAGLINE_DATA_DIR": str(tmp_path / "data")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "ragline.cli", "ingest", str(docs), "--watch", "--interval", "0.3", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    watchdog = threading.Timer(300, proc.kill)
    watchdog.start()
    try:
        assert proc.stdout is not None
        first = json.loads(proc.stdout.readline())
        assert first["added"] == 5 and first["index_chunks"] == 5
        (docs / "alpha.md").write_text("# Alpha guide\n\n## Setup\n\nThe turquoise heron sleeps.\n")
        second = json.loads(proc.stdout.readline())
        assert (second["updated"], second["unchanged"], second["index_chunks"]) == (1, 4, 5)
        proc.send_signal(sig)
        rest, err = proc.communicate(timeout=60)
    finally:
        watchdog.cancel()
        proc.kill()
    assert proc.returncode == 0, err
    assert rest == ""  # no run after the interrupt, no traceback on stdout
    assert "Traceback" not in err
    # the index is closed cleanly: another process can open it and sees the edit
    from ragline.store.edge import EdgeStore
    from ragline.store.generations import Generations

    with EdgeStore(Generations(tmp_path / "data").published_path()) as store:
        texts = [p["text"] for _, p in store.points()]
    assert "The turquoise heron sleeps." in texts and len(texts) == 5


@pytest.mark.slow
def test_status_keeps_the_engine_of_a_watch_run(tmp_path: Path) -> None:
    """A --watch run records its ingest once, as a plain run does: ``status --json`` names the engine."""
    docs = write_docs(tmp_path / "docs")
    env = {**os.environ, "RAGLINE_DATA_DIR": str(tmp_path / "data")}
    cli = [sys.executable, "-m", "ragline.cli"]
    proc = subprocess.Popen(
        [*cli, "ingest", str(docs), "--watch", "--interval", "0.3", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    watchdog = threading.Timer(300, proc.kill)
    watchdog.start()
    try:
        assert proc.stdout is not None
        assert json.loads(proc.stdout.readline())["added"] == 5
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        watchdog.cancel()
        proc.kill()
    assert proc.returncode == 0, err
    status = subprocess.run([*cli, "status", "--json"], capture_output=True, text=True, env=env, timeout=300)
    last = json.loads(status.stdout)["last_ingest"]
    assert (last["engine"], last["added"], last["paths"]) == ("local", 5, [str(docs)])
