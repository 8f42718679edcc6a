"""The default placement on Ray Serve on 127.0.0.1: retrieval inside the ingress replica, generation a
deployment of its own. The same serving contract as test_ray_serve.py, the topology, and the ingress
replica killed under load: the requests in flight in it fail, Serve replaces it, and the service goes on.
One ingress replica, because ``/metrics`` shows the process of the replica that answers it
(docs/observability.md).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from llm_server import LlamaServer

from ragline.api.settings import GeneratorSettings, RetrieverSettings

from .contract import FLUX, ServingContract
from .helpers import SITE, auth, listening_sockets
from .ray_checks import kill_a_replica_under_load, recovery_seconds, serving_on_ray, summary, under_bounded_load

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:Using extra keyword arguments on `Field`:DeprecationWarning"),
]

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def base_url(index_dir: Path, llm: LlamaServer) -> Iterator[str]:
    retriever = RetrieverSettings(num_replicas=1, num_cpus=0.5)
    assert retriever.placement == "ingress"  # the default
    generator = GeneratorSettings(num_replicas=1, num_cpus=0.5)
    with serving_on_ray(index_dir, llm, retriever=retriever, generator=generator) as url:
        yield url


class TestRetrievalInTheIngress(ServingContract):
    def test_the_ingress_replicas_retrieve_and_the_generator_is_apart(self, base_url: str) -> None:
        from ray import serve

        deployments = serve.status().applications["ragline"].deployments
        running = {name: d.replica_states.get("RUNNING", 0) for name, d in deployments.items()}
        # sized by the retriever's settings; the replica holds the embedder and a copy of the index
        assert running == {"Ingress": 1, "Generator": 1}

    def test_haproxy_serves_the_port_and_everything_stays_on_loopback(self, base_url: str) -> None:
        port = int(base_url.rsplit(":", 1)[1])
        owners = {pid for pid, _, p in listening_sockets(os.getpid()) if p == port}
        assert {Path(f"/proc/{pid}/comm").read_text().strip() for pid in owners} == {"haproxy"}
        assert {address for _, address, _ in listening_sockets(os.getpid())} <= {"127.0.0.1", "::1"}
        r = httpx.post(f"{base_url}/search", json={"query": FLUX, "k": 1}, headers=auth("acme"), timeout=60)
        assert r.status_code == 200, r.text
        assert r.json()["hits"][0]["source"].startswith(SITE["acme"] + "/flux.html")


def test_a_killed_ingress_replica_is_replaced_and_the_service_keeps_answering(base_url: str) -> None:
    # the only ingress replica: HAProxy holds new requests on Serve's proxy until the replacement is up
    kill_a_replica_under_load(base_url, "Ingress", replicas=1)


def test_a_crashed_llm_server_gives_fast_503s_and_answers_return_when_it_is_back(
    base_url: str, llm: LlamaServer
) -> None:
    """The llama.cpp server behind the OpenAI-compatible backend is killed (SIGKILL) under bounded load and
    started again 5 s later: while it is down every generated answer, streamed or not, fails fast with 503
    llm_unavailable (a stream in flight at the crash ends with an error event), searches all succeed, and the
    answers come back without restarting anything."""
    generative = {"query": FLUX, "k": 2, "mode": "generative"}
    clients = {
        "answer": ("/query", generative),
        "stream": ("/query", {**generative, "stream": True}),
        "search": ("/search", {"query": FLUX, "k": 3}),
    }
    restarted_at: list[float] = []  # the new server process is started
    back_at: list[float] = []  # ... and answers

    def crash_and_restart() -> None:
        llm.kill()
        time.sleep(5)
        restarted_at.append(time.monotonic())
        llm.start()
        back_at.append(time.monotonic())

    outcomes, crashed, _ = under_bounded_load(base_url, clients, crash_and_restart, after=15)
    print(summary(outcomes, crashed))
    assert all(o.ok for o in outcomes if o.client == "search"), summary(outcomes, crashed)
    in_flight = [o for o in outcomes if o.started <= crashed <= o.ended]
    down = [o for o in outcomes if crashed < o.started and o.ended < restarted_at[0] and o not in in_flight]
    answers_down = [o for o in down if o.client != "search"]
    assert len(answers_down) >= 4, summary(outcomes, crashed)
    assert all((o.status, o.error_type) == (503, "llm_unavailable") for o in answers_down), summary(down, crashed)
    assert all(o.status in (200, 503, "stream error") for o in in_flight), summary(in_flight, crashed)
    for client in ("answer", "stream"):
        after = [o for o in outcomes if o.client == client and o.started > back_at[0]]
        assert after and after[-1].ok, summary(outcomes, crashed)
        again = recovery_seconds(outcomes, back_at[0], client)
        total = back_at[0] - crashed + again
        print(f"{client}: answers {again:.1f} s after the server is back, {total:.1f} s after the crash")
