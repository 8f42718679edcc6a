"""Run a server as a supervised child, so that stopping it stops everything it started.

``ragline serve`` on Ray starts a tree of processes: Ray's GCS and raylet, the Serve controller, replica
workers, and HAProxy, which Serve's manager actor spawns and reloads. A signal to the terminal's process group
reached some of them and not others: the raylet died under the driver (which then aborted), and HAProxy, in
another process group, kept the port. So the command runs in two processes:

* the supervisor (the process the user started) takes SIGINT and SIGTERM, asks the server to stop, waits
  ``grace`` seconds for it, and then stops every process left in the server's session or below itself;
* the server runs in a session of its own, which no terminal or group signal reaches; it stops gracefully
  on the supervisor's SIGTERM, and also when the supervisor dies (Linux: parent-death signal).

On Linux the supervisor is a child subreaper: a process of the tree whose parent died is re-parented to it,
not to init, so it is found and reaped. Elsewhere the session alone is used.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

log = logging.getLogger(__name__)

SUPERVISED_ENV = "RAGLINE_SUPERVISED"  # set in the server's environment: it is the supervised child
_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36
_KILL_WAIT = 5.0  # seconds between SIGTERM and SIGKILL for the processes left behind


def is_supervised() -> bool:
    return os.environ.get(SUPERVISED_ENV) == "1"


def supervise(argv: Sequence[str], *, grace: float, env: Mapping[str, str] | None = None) -> int:
    """Run ``argv`` as the supervised server and return its exit code (128 + signal when it was killed).

    The first SIGINT or SIGTERM asks the server to stop (SIGTERM); a second one, or ``grace`` seconds without
    an exit, kills it. Whatever it leaves behind is stopped before this returns.
    """
    _prctl(_PR_SET_CHILD_SUBREAPER, 1)
    child_env = {**(env if env is not None else os.environ), SUPERVISED_ENV: "1"}
    child = subprocess.Popen(list(argv), env=child_env, start_new_session=True)
    requests: list[int] = []
    asked = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        requests.append(signum)
        asked.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        code = _wait(child, requests, asked, grace)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        left = stop_tree(child.pid)
        if left:
            log.info("stopped %d process(es) the server left behind", left)
    return code if code >= 0 else 128 - code


def _wait(child: subprocess.Popen[bytes], requests: list[int], asked: threading.Event, grace: float) -> int:
    deadline: float | None = None
    killed = False
    while True:
        try:
            return child.wait(timeout=0.2)
        except subprocess.TimeoutExpired:
            pass
        if asked.is_set():
            asked.clear()
            if deadline is None:
                deadline = time.monotonic() + grace
                _signal(child.pid, signal.SIGTERM)
            elif not killed:  # asked twice: stop now
                log.warning("asked again to stop: stopping the server at once")
                _signal(child.pid, signal.SIGKILL)
                killed = True
        if deadline is not None and not killed and time.monotonic() > deadline:
            log.warning("the server did not stop within %g s; killing it", grace)
            _signal(child.pid, signal.SIGKILL)
            killed = True


def die_with_parent() -> None:
    """In the supervised server: receive SIGTERM when the supervisor dies (Linux), and stop then."""
    _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() == 1:  # the supervisor died before the call
        os.kill(os.getpid(), signal.SIGTERM)


def stop_tree(session: int) -> int:
    """SIGTERM, then SIGKILL after a few seconds, to every live process in ``session`` or below this one;
    reap the children. Returns how many were signalled."""
    targets = _tree(session, os.getpid())
    signalled = len(targets)
    log.debug("left behind: %s", {pid: _name(pid) for pid in targets})
    for pid in targets:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + _KILL_WAIT
    while targets and time.monotonic() < deadline:
        _reap()
        targets = [pid for pid in targets if _alive(pid)]
        time.sleep(0.05)
    for pid in targets:
        _signal(pid, signal.SIGKILL)
    for pid in targets:  # SIGKILL cannot be refused; wait for the kernel to finish it
        for _ in range(100):
            _reap()
            if not _alive(pid):
                break
            time.sleep(0.02)
    _reap()
    return signalled


def _tree(session: int, root: int) -> list[int]:
    """Live processes in ``session``, or descendants of ``root`` (Linux: read from /proc)."""
    table = _processes()
    below: set[int] = set()
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        for pid, (ppid, _sid, _state) in table.items():
            if ppid == parent and pid not in below:
                below.add(pid)
                frontier.append(pid)
    return sorted(
        pid
        for pid, (_ppid, sid, state) in table.items()
        if (sid == session or pid in below) and pid != root and state != "Z"
    )


def _processes() -> dict[int, tuple[int, int, str]]:
    """pid -> (parent pid, session id, state), for every process this one can see."""
    out: dict[int, tuple[int, int, str]] = {}
    proc = Path("/proc")
    if not proc.is_dir():
        return out
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # gone meanwhile, or not ours to read
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        out[int(entry.name)] = (int(fields[1]), int(fields[3]), fields[0])
    return out


def _name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")[:80]
    except OSError:
        return "?"


def _alive(pid: int) -> bool:
    info = _processes().get(pid)
    return info is not None and info[2] != "Z"


def _reap() -> None:
    """Collect exited children (orphans re-parented here included) so that none stays a zombie."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):  # gone already, or not ours
        os.kill(pid, sig)


def _prctl(option: int, value: int) -> None:
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(option, value, 0, 0, 0)
    except (OSError, AttributeError):  # no libc to call: the session is enough
        log.debug("prctl(%d) unavailable", option)
