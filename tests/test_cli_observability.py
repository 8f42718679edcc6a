"""The command line's operator side: last ingest in `status`, the ingest metrics file, completion, quiet output."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest


def ragline(*args: str, data_dir: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "RAGLINE_DATA_DIR": str(data_dir), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "ragline.cli", *args], capture_output=True, text=True, env=full_env, timeout=600
    )


@pytest.mark.slow
def test_status_shows_the_last_ingest_and_the_metrics_file_its_counts(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "one.md").write_text("# One\n\nThe first page talks about gearboxes.\n")
    (docs / "two.md").write_text("# Two\n\nThe second page talks about pulleys.\n")
    (docs / "empty.md").write_text("")
    data, prom = tmp_path / "data", tmp_path / "metrics" / "ragline.prom"

    r = ragline("status", "--json", data_dir=data)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["last_ingest"] is None

    r = ragline("ingest", str(docs), "--json", "--metrics-file", str(prom), data_dir=data)
    assert r.returncode == 0, r.stderr
    # off a terminal: no progress bar, only the warning about the empty file
    assert [line.split(":")[0] for line in r.stderr.splitlines()] == ["WARNING ragline.ingest.local"]

    r = ragline("status", "--json", data_dir=data)
    assert r.returncode == 0, r.stderr
    status = json.loads(r.stdout)
    last = status["last_ingest"]
    assert (last["added"], last["documents"], len(last["skipped"])) == (2, 2, 1)
    assert last["paths"] == [str(docs)] and last["engine"] == "local" and last["finished"]
    assert status["documents"] == 2 and status["chunks"] == last["index_chunks"] >= 2

    r = ragline("status", data_dir=data)
    assert r.returncode == 0, r.stderr
    assert re.search(r"last ingest .*: 2 added, 0 updated, 0 deleted, 1 skipped", r.stdout)

    text = prom.read_text()
    assert 'ragline_ingest_documents_total{outcome="added"} 2.0' in text
    assert 'ragline_ingest_documents_total{outcome="skipped"} 1.0' in text
    assert "ragline_ingest_runs_total 1.0" in text
    assert f"ragline_ingest_chunks_written_total {float(last['chunks_written'])}" in text
    assert f"ragline_index_chunks {float(last['index_chunks'])}" in text

    # A second run changes nothing and says so in both places.
    r = ragline("--quiet", "ingest", str(docs), "--metrics-file", str(prom), data_dir=data)
    assert r.returncode == 0 and r.stderr == ""
    assert json.loads(ragline("status", "--json", data_dir=data).stdout)["last_ingest"]["unchanged"] == 2
    assert 'ragline_ingest_documents_total{outcome="unchanged"} 2.0' in prom.read_text()


def test_shell_completion_is_on(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("ragline")  # completion is keyed to the installed command's name
    if not script.is_file():
        pytest.skip("the ragline console script is not installed beside this Python")
    env = {**os.environ, "RAGLINE_DATA_DIR": str(tmp_path)}
    # What `ragline --show-completion` prints, asked for bash by name (the flag itself detects the caller's shell,
    # which under a test runner may be none).
    r = subprocess.run([str(script)], capture_output=True, text=True, env={**env, "_RAGLINE_COMPLETE": "source_bash"})
    assert r.returncode == 0 and "_ragline_completion" in r.stdout
    env |= {"_RAGLINE_COMPLETE": "complete_bash", "COMP_WORDS": "ragline ingest --metr", "COMP_CWORD": "2"}
    r = subprocess.run([str(script)], capture_output=True, text=True, env=env)
    assert r.returncode == 0 and r.stdout.split() == ["--metrics-file"]


def test_progress_bars_show_rate_and_time_left_on_a_terminal_only() -> None:
    import io

    from rich.console import Console

    from ragline.cli.app import state
    from ragline.cli.progress import Bars, bars_enabled

    screen = io.StringIO()
    terminal = Console(file=screen, force_terminal=True, width=160)
    assert bars_enabled(console=terminal) and not bars_enabled(as_json=True, console=terminal)
    assert not bars_enabled(console=Console(file=io.StringIO()))  # not a terminal
    state["quiet"] = True
    try:
        assert not bars_enabled(console=terminal)
    finally:
        state["quiet"] = False
    with Bars(True, console=terminal, transient=False) as bars:
        bars.add("documents", "documents", 10, unit="docs")
        for _ in range(4):
            bars.advance("documents")
        bars.update("documents", note="1 skipped")
        bars.progress.refresh()  # type: ignore[union-attr]
    shown = screen.getvalue()
    assert "4/10" in shown and "docs/s" in shown and "ETA" in shown and "1 skipped" in shown
