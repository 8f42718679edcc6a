"""The real app on Ray Serve on 127.0.0.1: the serving contract, fuzzing, an LLM outage, a killed replica.

One Serve start for the module (~10-20 s): retrieval as a deployment of its own (2 replicas) and generation
(1 replica, the OpenAI-compatible backend against a real llama.cpp server) behind the FastAPI ingress.
test_ray_serve_in_ingress.py runs the default placement, retrieval inside the ingress replicas.
"""

from __future__ import annotations

import concurrent.futures
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from llm_server import LlamaServer

from ragline.api.settings import GeneratorSettings, IngressSettings, RetrieverSettings

from .contract import FLUX, ServingContract, sse_events
from .fuzzing import fuzz
from .helpers import auth, listening_sockets
from .ray_checks import kill_a_replica_under_load, serving_on_ray

pytestmark = [
    pytest.mark.slow,
    # Ray Serve's own config models use pydantic features deprecated in pydantic 2: not ours to fix.
    pytest.mark.filterwarnings("ignore:Using extra keyword arguments on `Field`:DeprecationWarning"),
]

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def base_url(index_dir: Path, llm: LlamaServer) -> Iterator[str]:
    with serving_on_ray(
        index_dir,
        llm,
        ingress=IngressSettings(num_replicas=1),
        # Serve's access lines in the retriever (off by default) let a test see the request id arrive there
        retriever=RetrieverSettings(num_replicas=2, num_cpus=0.5, access_log=True, placement="deployment"),
        generator=GeneratorSettings(num_replicas=1, num_cpus=0.5),
        # Generous: the shutdown test's answer must finish within it, however busy the machine.
        graceful_shutdown_timeout=120,
    ) as url:
        yield url


class TestRayServe(ServingContract):
    def test_retrieval_and_generation_are_separate_deployments(self, base_url: str) -> None:
        from ray import serve

        deployments = serve.status().applications["ragline"].deployments
        running = {name: d.replica_states.get("RUNNING", 0) for name, d in deployments.items()}
        assert running == {"Ingress": 1, "Retriever": 2, "Generator": 1}

    def test_haproxy_serves_the_port_on_the_fast_path(self, base_url: str) -> None:
        port = int(base_url.rsplit(":", 1)[1])
        owners = {pid for pid, _, p in listening_sockets(os.getpid()) if p == port}
        assert {Path(f"/proc/{pid}/comm").read_text().strip() for pid in owners} == {"haproxy"}

    def test_every_socket_of_ray_and_serve_listens_on_loopback(self, base_url: str) -> None:
        sockets = listening_sockets(os.getpid())
        assert len(sockets) > 5  # gcs, raylet, workers, proxy, replicas, the HTTP port
        assert any(port == int(base_url.rsplit(":", 1)[1]) for _, _, port in sockets)
        assert {address for _, address, _ in sockets} <= {"127.0.0.1", "::1"}, sockets


# -- fuzzing -------------------------------------------------------------------------------------------------


def test_request_id_reaches_every_replica(base_url: str) -> None:
    """The given X-Request-ID comes back once, is on ragline's JSON access line in the ingress replica, and
    Serve's logs of the retrieval and generation replicas carry it too."""
    import json
    import uuid

    rid = f"ray-rid-{uuid.uuid4().hex[:12]}"
    r = httpx.post(
        f"{base_url}/query", json={"query": FLUX, "k": 2}, headers={**auth(), "X-Request-ID": rid}, timeout=120
    )
    assert r.status_code == 200, r.text
    assert r.headers.get_list("x-request-id") == [rid]
    logs = Path(ray._private.worker.global_worker.node.get_logs_dir_path())

    def lines_with_rid() -> list[tuple[Path, str]]:
        found = []
        for path in logs.rglob("*"):
            if path.is_file() and path.suffix in (".err", ".out", ".log"):
                found += [(path, line) for line in path.read_text(errors="replace").splitlines() if rid in line]
        return found

    deadline = time.monotonic() + 30
    while True:  # log files are flushed asynchronously
        found = lines_with_rid()
        access = [json.loads(line) for _, line in found if '"ragline.api.access"' in line]
        replicas = {path.name for path, _ in found}
        if access and any("Retriever" in n for n in replicas) and any("Generator" in n for n in replicas):
            break
        assert time.monotonic() < deadline, f"request id missing from the replicas' logs: {sorted(replicas)}"
        time.sleep(0.5)
    assert access[0]["request_id"] == rid and access[0]["route"] == "/query" and access[0]["status"] == 200


def test_schemathesis_finds_no_schema_violation(base_url: str) -> None:
    """Every operation of the OpenAPI schema, positive and negative cases, on Ray Serve: never a 5xx, and every
    response as the schema declares it."""
    found = fuzz(base_url, auth("acme"), answers=6)  # answers cost the model a second or more each
    assert found.calls > 100
    assert {"/v1/embeddings", "/v1/models/{model_id}"} <= found.seen  # the OpenAI routes, embeddings over a handle
    assert not found.failures, "\n".join(found.failures[:20])


def test_concurrent_answers_all_complete(base_url: str) -> None:
    """Answers in flight together each finish. The generator replica must not run the model on its event
    loop: there one blocked stream would hold up every other (Serve's gRPC path iterates a sync generator
    on the loop), so answer is an async generator that steps the model in a thread."""
    import inspect

    from ragline.serving.deployments import GeneratorDeployment as Deployment

    assert inspect.isasyncgenfunction(Deployment.func_or_class.answer)

    def ask(n: int) -> tuple[int, str]:
        body = {"query": f"{FLUX} ({n})", "k": 2, "stream": n % 2 == 0}
        r = httpx.post(f"{base_url}/query", json=body, headers=auth("acme"), timeout=240)
        return r.status_code, r.text

    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        results = list(pool.map(ask, range(3)))
    assert [status for status, _ in results] == [200, 200, 200], results
    assert sse_events(results[0][1])[-1][0] == "done"


# -- resilience ------------------------------------------------------------------------------------------------


def test_llm_down_gives_503_and_answers_return_when_it_is_back(
    base_url: str, client: httpx.Client, llm: LlamaServer
) -> None:
    llm.stop()
    try:
        ready = client.get(f"{base_url}/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"] == {"index": "ok", "llm": "the language model is unavailable; try again later"}

        generative = {"mode": "generative"}
        r = client.post(f"{base_url}/query", json={"query": FLUX, **generative}, headers=auth("acme"))
        assert r.status_code == 503
        assert r.json()["error"] == {
            "message": "the language model is unavailable; try again later",
            "type": "llm_unavailable",
            "code": 503,
        }
        streamed = client.post(
            f"{base_url}/query", json={"query": FLUX, "stream": True, **generative}, headers=auth("acme")
        )
        assert streamed.status_code == 503
        chat = openai.OpenAI(base_url=f"{base_url}/v1", api_key=auth("acme")["Authorization"][7:], max_retries=0)
        with pytest.raises(openai.APIStatusError, match="language model is unavailable") as info:
            chat.chat.completions.create(
                model="ragline", messages=[{"role": "user", "content": FLUX}], extra_body=generative
            )
        assert info.value.status_code == 503
        # auto (the default with an endpoint) answers from the documentation, and says why.
        auto = client.post(f"{base_url}/query", json={"query": FLUX, "mode": "auto"}, headers=auth("acme"))
        assert auto.status_code == 200, auto.text
        assert auto.json()["mode"] == "extractive" and "unavailable" in auto.json()["fallback"]
        assert "127.0.0.1" not in auto.text
        # Retrieval does not need the LLM.
        assert client.post(f"{base_url}/search", json={"query": FLUX}, headers=auth("acme")).status_code == 200
    finally:
        llm.start()
    assert client.get(f"{base_url}/readyz").status_code == 200
    r = client.post(f"{base_url}/query", json={"query": FLUX, "k": 2, "mode": "generative"}, headers=auth("acme"))
    assert r.status_code == 200, r.text
    assert r.json()["answer"].strip() and r.json()["mode"] == "generative"


def test_a_killed_replica_is_replaced_and_the_service_keeps_answering(base_url: str) -> None:
    kill_a_replica_under_load(base_url, "Retriever")


def test_shutdown_finishes_the_requests_in_flight(base_url: str) -> None:
    """Last in the module: stops the app the way `ragline serve` does on SIGTERM."""
    from ragline.serving import app as ray_serve

    responses: list[httpx.Response] = []

    def ask() -> None:
        body = {"query": FLUX, "k": 2, "stream": True}
        responses.append(httpx.post(f"{base_url}/query", json=body, headers=auth("acme"), timeout=300))

    worker = threading.Thread(target=ask)
    worker.start()
    time.sleep(1.0)  # the request is at the ingress, waiting for retrieval and generation
    ray_serve.shutdown()
    worker.join(timeout=300)
    assert responses and responses[0].status_code == 200, responses
    assert sse_events(responses[0].text)[-1][0] == "done"
