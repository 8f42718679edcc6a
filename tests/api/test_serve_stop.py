"""`ragline serve` on Ray stops everything it started on Ctrl-C and on SIGTERM: Ray, Serve's actors, HAProxy.

The real command, as `make run` starts it: its own process group (a terminal's), one answer served, then the
signal to the whole group, as a terminal (Ctrl-C) or a service manager (SIGTERM) sends it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import httpx
import pytest
from llm_server import free_port

from .contract import FLUX
from .helpers import auth

pytestmark = pytest.mark.slow

START_TIMEOUT = 240.0
STOP_TIMEOUT = 60.0


def _processes() -> dict[int, tuple[int, int, str]]:
    """pid -> (parent, session, state) from /proc."""
    out = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rfind(")") + 2 :].split()
            out[int(entry.name)] = (int(fields[1]), int(fields[3]), fields[0])
    return out


def _tree(root: int) -> tuple[set[int], set[int]]:
    """The live processes below ``root`` and the sessions they are in."""
    table = _processes()
    below: set[int] = set()
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        for pid, (ppid, _, state) in table.items():
            if ppid == parent and pid not in below and state != "Z":
                below.add(pid)
                frontier.append(pid)
    return below, {table[pid][1] for pid in below}


def _left(pids: set[int], sessions: set[int]) -> dict[int, str]:
    """Which of ``pids``, or of any process in ``sessions``, still runs (zombies have stopped)."""
    left = {}
    for pid, (_, sid, state) in _processes().items():
        if state != "Z" and (pid in pids or sid in sessions) and pid != os.getpid():
            try:
                left[pid] = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:120]
            except OSError:
                continue
    return left


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the process table from /proc (Linux)")
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_serve_on_ray_stops_everything_and_frees_the_port(index_dir: Path, tmp_path: Path, sig: signal.Signals) -> None:
    log = (tmp_path / "serve.log").open("wb")  # a file, not a pipe: nobody reads a pipe while it serves
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    ragline = Path(sys.executable).with_name("ragline")
    server = subprocess.Popen(
        [str(ragline), "-q", "serve", "--port", str(port), "--data-dir", str(index_dir)],
        start_new_session=True,  # a process group of its own, as a terminal gives a command
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    try:
        _wait_until_serving(server, url, log)
        answer = httpx.post(f"{url}/query", json={"query": FLUX}, headers=auth("acme"), timeout=120)
        assert answer.status_code == 200 and "[1]" in answer.json()["answer"], answer.text

        # What is to be stopped is there. Serve replaces its HAProxy process when it reloads the routes (the pid
        # changes about a second after start-up here), so one look at the tree can miss HAProxy: look until both
        # are seen, and keep every pid seen, so the check below covers the old HAProxy and the new one.
        started, sessions = set(), set()
        deadline = time.monotonic() + 15
        while True:
            pids, sids = _tree(server.pid)
            started |= pids
            sessions |= sids
            names = " ".join(_left(pids, set()).values())
            if "raylet" in names and "haproxy" in names:
                break
            assert time.monotonic() < deadline, f"raylet and haproxy are not both below the server: {names}"
            time.sleep(0.2)
        os.killpg(server.pid, sig)
        code = server.wait(timeout=STOP_TIMEOUT)
        assert code == 0, _tail(log)
        assert _left(started, sessions) == {}
        with socket.socket() as s:  # the port is free for the next start (TIME_WAIT aside, as servers allow)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", port))
            s.listen()
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


def _wait_until_serving(server: subprocess.Popen[bytes], url: str, log: IO[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        assert server.poll() is None, f"the server exited: {_tail(log)}"
        try:
            if httpx.get(f"{url}/healthz", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.5)


def _tail(log: IO[bytes]) -> str:
    log.flush()
    return Path(log.name).read_bytes().decode(errors="replace")[-3000:]


STOP_WITHIN = 15.0  # what `ragline serve` promises from any state, starting included


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the process table from /proc (Linux)")
def test_serve_stops_promptly_while_ray_is_starting_and_on_a_second_ctrl_c(index_dir: Path, tmp_path: Path) -> None:
    ragline = Path(sys.executable).with_name("ragline")

    def start(name: str) -> tuple[subprocess.Popen[bytes], IO[bytes], str]:
        log = (tmp_path / f"{name}.log").open("wb")
        port = free_port()
        server = subprocess.Popen(
            [str(ragline), "serve", "--port", str(port), "--data-dir", str(index_dir)],  # warnings shown
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        return server, log, f"http://127.0.0.1:{port}"

    # 1. SIGTERM once Ray's processes are up, before Serve answers.
    server, log, url = start("starting")
    try:
        started, sessions = set(), set()
        deadline = time.monotonic() + START_TIMEOUT
        while "raylet" not in " ".join(_left(started, set()).values()):
            assert server.poll() is None, _tail(log)
            assert time.monotonic() < deadline, "Ray did not start"
            pids, sids = _tree(server.pid)
            started, sessions = started | pids, sessions | sids
            time.sleep(0.1)
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"{url}/healthz", timeout=1)  # not serving yet: the stop lands while it starts
        os.killpg(server.pid, signal.SIGTERM)
        assert server.wait(timeout=STOP_WITHIN) == 0, _tail(log)
        assert _left(started, sessions) == {}
        assert "did not stop within" not in _tail(log)
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()

    # 2. Ctrl-C twice on a ready server: it stops at once, and says so (not that it timed out).
    server, log, url = start("twice")
    try:
        _wait_until_serving(server, url, log)
        started, sessions = _tree(server.pid)
        os.killpg(server.pid, signal.SIGINT)
        time.sleep(0.3)
        os.killpg(server.pid, signal.SIGINT)
        server.wait(timeout=STOP_WITHIN)
        assert _left(started, sessions) == {}
        said = _tail(log)
        assert "did not stop within" not in said and "asked again to stop" in said
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()
