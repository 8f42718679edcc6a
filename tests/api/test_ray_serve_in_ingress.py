"""The default placement on Ray Serve on 127.0.0.1: retrieval inside the ingress replica, generation a
deployment of its own. The same serving contract as test_ray_serve.py, the topology, and the ingress
replica killed under load: the requests in flight in it fail, Serve replaces it, and the service goes on.
One ingress replica, because ``/metrics`` shows the process of the replica that answers it
(docs/observability.md).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from llm_server import LlamaServer

from ragline.api.settings import GeneratorDeployment, RetrieverDeployment

from .contract import FLUX, ServingContract
from .helpers import SITE, auth, listening_sockets
from .ray_checks import kill_a_replica_under_load, serving_on_ray

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:Using extra keyword arguments on `Field`:DeprecationWarning"),
]

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def base_url(index_dir: Path, llm: LlamaServer) -> Iterator[str]:
    retriever = RetrieverDeployment(num_replicas=1, num_cpus=0.5)
    assert retriever.placement == "ingress"  # the default
    generator = GeneratorDeployment(num_replicas=1, num_cpus=0.5)
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
