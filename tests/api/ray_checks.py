"""Checks shared by the Ray Serve test modules (one per placement of retrieval)."""

from __future__ import annotations

import concurrent.futures
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from llm_server import MODEL_ALIAS, LlamaServer

from .contract import FLUX
from .helpers import app_settings, auth


@contextmanager
def serving_on_ray(index_dir: Path, llm: LlamaServer, **serve: Any) -> Iterator[str]:
    """The app on Ray Serve on 127.0.0.1 over the two-tenant index, answering through the test llama.cpp
    server; ``serve`` are ServeSettings fields. Yields the base URL; stops Serve and Ray after."""
    from ragline.ray_local import stop_local_ray
    from ragline.serving import app as ray_serve

    settings = app_settings(
        index_dir,
        llm={"backend": "openai", "base_url": llm.base_url, "model": MODEL_ALIAS, "max_retries": 0, "timeout": 30},
        # Short enough that no question can overflow the test server's 2048-token window, whatever its
        # characters (the openai backend counts tokens with another tokenizer than the server's).
        max_query_chars=300,
        **serve,
    )
    try:
        yield ray_serve.run(settings, log_to_driver=False)
    finally:
        ray_serve.shutdown()
        stop_local_ray()


@dataclass
class Outcome:
    client: str
    started: float
    ended: float
    status: int | str  # the HTTP status, or the name of the error (a broken connection, a timeout)
    error_type: str | None = None  # the ``error.type`` of a ragline error body
    detail: str = ""  # the start of a failed response's body

    @property
    def ok(self) -> bool:
        return self.status == 200


# Whatever a request meets during a fault, it ends within this: a client that waited longer saw a hang.
HANG_SECONDS = 30.0


def under_bounded_load(
    base_url: str,
    clients: dict[str, tuple[str, dict[str, Any]]],
    fault: Callable[[], None],
    *,
    before: float = 4.0,
    after: float = 20.0,
) -> tuple[list[Outcome], float, float]:
    """Each of ``clients`` (name -> (path, body)) posts in a loop for ``before`` seconds, then ``fault()``
    runs (it may block, e.g. to kill something and bring it back), then the loop goes on for ``after``
    seconds. Returns the outcomes in order of their start, and when the fault began and ended."""
    outcomes: list[Outcome] = []
    done = threading.Event()
    began = ended = 0.0

    def loop(name: str, path: str, body: dict[str, Any]) -> None:
        with httpx.Client(timeout=HANG_SECONDS) as http:
            while not done.is_set():
                started = time.monotonic()
                try:
                    r = http.post(f"{base_url}{path}", json=body, headers=auth("acme"))
                    status: int | str = r.status_code
                    kind = _error_type(r) if r.status_code != 200 else None
                    detail = r.text[:120] if r.status_code != 200 else ""
                    if status == 200 and body.get("stream") and "event: error" in r.text:
                        status = "stream error"  # the stream started, then failed
                except httpx.HTTPError as e:
                    status, kind, detail = type(e).__name__, None, str(e)[:120]
                outcomes.append(Outcome(name, started, time.monotonic(), status, kind, detail))
                if status != 200:
                    time.sleep(0.2)  # a client that failed asks again soon, not in a tight loop

    with concurrent.futures.ThreadPoolExecutor(len(clients)) as pool:
        futures = [pool.submit(loop, name, path, body) for name, (path, body) in clients.items()]
        try:
            time.sleep(before)
            began = time.monotonic()
            fault()
            ended = time.monotonic()
            time.sleep(after)
        finally:
            done.set()
            for f in futures:
                f.result()
    return sorted(outcomes, key=lambda o: o.started), began, ended


def _error_type(r: httpx.Response) -> str | None:
    try:
        return str(r.json()["error"]["type"])
    except (ValueError, KeyError, TypeError):
        return None


def recovery_seconds(outcomes: list[Outcome], since: float, client: str | None = None) -> float:
    """Seconds from ``since`` to the start of the first request after which every request succeeded."""
    mine = [o for o in outcomes if client is None or o.client == client]
    last_failure = max((i for i, o in enumerate(mine) if not o.ok), default=-1)
    assert last_failure + 1 < len(mine), "no request succeeded after the last failure"
    return max(0.0, mine[last_failure + 1].started - since)


def summary(outcomes: list[Outcome], began: float) -> str:
    counts: dict[str, int] = {}
    for o in outcomes:
        key = f"{o.client}:{o.status}" + (f":{o.error_type}" if o.error_type else "")
        counts[key] = counts.get(key, 0) + 1
    slowest = max((o.ended - o.started for o in outcomes if not o.ok), default=0.0)
    details = sorted({f"{o.status}: {o.detail}" for o in outcomes if not o.ok and not o.error_type})
    return f"{len(outcomes)} requests {counts}, slowest failure {slowest:.2f} s, bodies {details}"


def kill_a_replica_under_load(base_url: str, deployment: str, replicas: int = 2) -> float:
    """Bounded load (one client asking for whole answers, two searching) while one of ``deployment``'s
    replicas is killed: only requests in flight in the killed process may fail; every other request
    succeeds or gets a fast 503, none a 500 or a hang; Serve brings the deployment back to ``replicas`` and
    every request after that succeeds. Returns the seconds from the kill to the last failure's successor."""
    import ray
    from ray import serve

    def names() -> list[str]:
        actors = ray.util.list_named_actors(all_namespaces=True)
        return sorted(a["name"] for a in actors if f"#{deployment}#" in a["name"])

    before = names()
    assert len(before) == replicas

    replica = ray.get_actor(before[0], namespace="serve")
    pid = ray.get(replica.__ray_call__.remote(lambda _self: os.getpid()), timeout=30)
    dead_at: list[float] = []

    def kill_and_wait() -> None:
        ray.kill(replica, no_restart=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if not dead_at and not Path(f"/proc/{pid}").exists():
                dead_at.append(time.monotonic())  # the process is gone, with the requests it held
            now = names()
            status = serve.status().applications["ragline"].deployments[deployment]
            if len(now) == replicas and before[0] not in now and status.replica_states.get("RUNNING") == replicas:
                return
            time.sleep(0.05 if not dead_at else 0.5)
        pytest.fail(f"the killed {deployment} replica was not replaced: {names()}")

    clients = {
        "answer": ("/query", {"query": FLUX, "k": 2}),
        "search 1": ("/search", {"query": FLUX, "k": 3}),
        "search 2": ("/search", {"query": FLUX, "k": 3}),
    }
    outcomes, killed, replaced = under_bounded_load(base_url, clients, kill_and_wait, after=8)
    print(summary(outcomes, killed), f"replaced after {replaced - killed:.1f} s")
    # Requests the killed process held: the connection breaks under them (HAProxy does not resend a POST).
    # Serve's HAProxy configuration answers its own 502/503/504 as a plain "500 Internal Server Error", so
    # such a request gets that or a closed connection; never one that arrived after the process died.
    died = dead_at[0] if dead_at else replaced
    in_flight = [o for o in outcomes if o.started <= died and o.ended >= killed]
    others = [o for o in outcomes if o not in in_flight]
    broken = {o.status for o in in_flight if o.status not in (200, 503, "RemoteProtocolError")}
    assert all(o.detail == "Internal Server Error" for o in in_flight if o.status == 500), summary(in_flight, killed)
    assert broken <= {500}, summary(in_flight, killed)
    assert {o.status for o in others} <= {200, 503}, summary(others, killed)
    assert all(o.error_type in (None, "overloaded", "unavailable") for o in others if o.status == 503)
    assert all(o.ok for o in outcomes if o.started > replaced), summary(outcomes, killed)
    assert sum(o.ok for o in outcomes if o.started > replaced) > 10, "the service stopped answering"
    recovered = recovery_seconds(outcomes, killed)
    print(f"{deployment}: every request succeeds {recovered:.1f} s after the kill")
    return recovered
