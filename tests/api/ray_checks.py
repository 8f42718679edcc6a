"""Checks shared by the Ray Serve test modules (one per placement of retrieval)."""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Iterator
from contextlib import contextmanager
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
    from ragline import serve as ray_serve
    from ragline.ray_local import stop_local_ray

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


def kill_a_replica_under_load(base_url: str, deployment: str, replicas: int = 2) -> None:
    """Bounded load (4 clients, 25 s) while one of ``deployment``'s replicas is killed: at most 2% of the
    requests fail (those in flight in the killed process among them), the last ones all succeed, and Serve
    brings the deployment back to ``replicas``."""
    import ray
    from ray import serve

    def names() -> list[str]:
        actors = ray.util.list_named_actors(all_namespaces=True)
        return sorted(a["name"] for a in actors if f"#{deployment}#" in a["name"])

    before = names()
    assert len(before) == replicas
    statuses: list[tuple[float, int]] = []
    stop_at = time.monotonic() + 25

    def client_loop(n: int) -> None:
        with httpx.Client(timeout=60) as http:
            while time.monotonic() < stop_at:
                try:
                    if n == 0:  # one client asks for whole answers, the others search
                        r = http.post(f"{base_url}/query", json={"query": FLUX, "k": 2}, headers=auth("acme"))
                    else:
                        r = http.post(f"{base_url}/search", json={"query": FLUX, "k": 3}, headers=auth("acme"))
                    statuses.append((time.monotonic(), r.status_code))
                except httpx.HTTPError:  # a broken connection counts as a failed request
                    statuses.append((time.monotonic(), 0))

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(client_loop, n) for n in range(4)]
        time.sleep(5)
        killed_at = time.monotonic()
        ray.kill(ray.get_actor(before[0], namespace="serve"), no_restart=True)
        for f in futures:
            f.result()

    after_kill = [s for t, s in statuses if t > killed_at]
    errors = [s for _, s in statuses if s != 200]
    print(f"{len(statuses)} requests, {len(after_kill)} after the kill, errors: {errors}")
    assert len(after_kill) > 20, "the service stopped answering after the kill"
    assert after_kill[-10:] == [200] * 10
    assert len(errors) <= 0.02 * len(statuses), errors

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        now = names()
        status = serve.status().applications["ragline"].deployments[deployment]
        if len(now) == replicas and before[0] not in now and status.replica_states.get("RUNNING") == replicas:
            return
        time.sleep(1)
    pytest.fail(f"the killed {deployment} replica was not replaced: {names()}")
