"""Ray Serve replicas follow the published generation of the embedded index: a `ragline ingest` subprocess
publishes a new generation under a bounded stream of searches, and a DELETE /admin/sources publishes another;
every Retriever replica moves to each without a restart and without failing a request. One /readyz reports
every replica (from the record each keeps in the data dir), also when each refuses a generation that does not
load and keeps serving the one it has."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from llm_server import LlamaServer

from ragline.api.settings import GeneratorSettings, IngressSettings, RetrieverSettings
from ragline.store.generations import Generations
from ragline.store.readers import READERS

from .ray_checks import serving_on_ray

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:Using extra keyword arguments on `Field`:DeprecationWarning"),
]

ray = pytest.importorskip("ray")

ADMIN_KEY = "admin-key-0123456789"
FLUX = "how to calibrate the flux widget"
HAMMOCK = "when does project hammock launch"
REPLICAS = 2


def ingest(docs: Path, data: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RAGLINE_DATA_DIR": str(data)}
    cmd = [sys.executable, "-m", "ragline.cli", "ingest", str(docs)]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, llm: LlamaServer) -> Iterator[tuple[str, Path, Path]]:
    root = tmp_path_factory.mktemp("ray-generations")
    docs, data = root / "docs", root / "data"
    docs.mkdir()
    (docs / "flux.md").write_text(
        "# Flux\n\n## Calibrating\n\nTo calibrate the flux widget, turn the blue lever three times.\n", encoding="utf-8"
    )
    built = ingest(docs, data)
    assert built.returncode == 0, built.stderr
    with serving_on_ray(
        data,
        llm,
        ingress=IngressSettings(num_replicas=1),
        retriever=RetrieverSettings(num_replicas=REPLICAS, num_cpus=0.5, placement="deployment"),
        generator=GeneratorSettings(num_replicas=1, num_cpus=0.5),
        api_keys={},  # every chunk visible: the pages carry no tenant
        admin_api_keys=[ADMIN_KEY],
    ) as url:
        yield url, docs, data


def finds(client: httpx.Client, url: str, question: str, name: str) -> bool:
    r = client.post(f"{url}/search", json={"query": question, "k": 2})
    assert r.status_code == 200, r.text
    return name in r.text


def every_replica(client: httpx.Client, url: str, question: str, name: str, *, found: bool, within: float) -> float:
    """Seconds until 12 searches in a row (spread over both replicas by Serve's router) agree with ``found``."""
    started = time.monotonic()
    streak = 0
    while streak < 12:
        assert time.monotonic() - started < within, f"the replicas did not follow within {within} s"
        streak = streak + 1 if finds(client, url, question, name) == found else 0
        if streak == 0:
            time.sleep(0.1)
    return time.monotonic() - started


def generations_reported(client: httpx.Client, url: str) -> set[tuple[int, int]]:
    """(served, published) of every Retriever replica, as one /readyz reports them."""
    generation = client.get(f"{url}/readyz").json()["generation"]
    replicas = generation["replicas"]
    assert len(replicas) == REPLICAS and len({r["replica"] for r in replicas}) == REPLICAS, generation
    assert generation["served"] == min(r["served"] for r in replicas)
    return {(r["served"], generation["published"]) for r in replicas}


def wait_reported(client: httpx.Client, url: str, want: set[tuple[int, int]], within: float = 15) -> None:
    deadline = time.monotonic() + within
    while (seen := generations_reported(client, url)) != want:
        assert time.monotonic() < deadline, f"replicas report {seen}, not {want}"
        time.sleep(0.2)


def test_replicas_move_to_a_generation_published_by_an_ingest_without_failing_a_request(
    served: tuple[str, Path, Path],
) -> None:
    url, docs, data = served
    statuses: list[int | str] = []
    stop = threading.Event()
    with httpx.Client(timeout=60) as client:
        assert generations_reported(client, url) == {(1, 1)}

        def load() -> None:  # one client searching in a loop, bounded by count and by the test
            with httpx.Client(timeout=30) as http:
                while not stop.is_set() and len(statuses) < 3000:
                    try:
                        r = http.post(f"{url}/search", json={"query": FLUX, "k": 2})
                        statuses.append(r.status_code if "flux.md" in r.text else f"{r.status_code} without flux")
                    except httpx.HTTPError as e:
                        statuses.append(type(e).__name__)

        worker = threading.Thread(target=load)
        worker.start()
        try:
            (docs / "hammock.md").write_text(
                "# Hammock\n\n## Launch\n\nProject Hammock launches on 12 March from the orbital yard.\n",
                encoding="utf-8",
            )
            built = ingest(docs, data)
            assert built.returncode == 0, built.stderr
            moved = every_replica(client, url, HAMMOCK, "hammock.md", found=True, within=15)
            time.sleep(1.0)  # the load goes on across the swap and after it
        finally:
            stop.set()
            worker.join(timeout=120)
        wait_reported(client, url, {(2, 2)})
        assert 'ragline_index_generation{which="served"} 2.0' in client.get(f"{url}/metrics").text
    print(f"{len(statuses)} searches during the publish; every replica served it {moved:.1f} s after")
    assert len(statuses) > 20 and set(statuses) == {200}, {s: statuses.count(s) for s in set(statuses)}


def test_admin_delete_publishes_a_generation_every_replica_follows(served: tuple[str, Path, Path]) -> None:
    url, docs, _ = served
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    with httpx.Client(timeout=120) as client:
        every_replica(client, url, HAMMOCK, "hammock.md", found=True, within=15)  # the first test's page
        before = max(served_ for served_, _ in generations_reported(client, url))
        r = client.delete(f"{url}/admin/sources", params={"prefix": str(docs / "hammock.md")}, headers=admin)
        assert r.status_code == 200, r.text
        assert r.json()["documents"] == 1 and r.json()["chunks"] >= 1
        every_replica(client, url, HAMMOCK, "hammock.md", found=False, within=15)
        assert finds(client, url, FLUX, "flux.md")
        wait_reported(client, url, {(before + 1, before + 1)})
        # a prefix that matches nothing publishes nothing
        r = client.delete(f"{url}/admin/sources", params={"prefix": str(docs / "nothing")}, headers=admin)
        assert r.status_code == 200 and r.json()["chunks"] == 0
        assert generations_reported(client, url) == {(before + 1, before + 1)}


def test_readyz_reports_every_replica_and_each_keeps_serving_a_generation_it_refuses(
    served: tuple[str, Path, Path],
) -> None:
    url, _, data = served
    gens = Generations(data)
    good = gens.published()
    assert good is not None
    readers = gens.root / READERS
    # Records of a replica that died on this host, and of one on another host silent too long: not reported.
    ghost = subprocess.Popen([sys.executable, "-c", "pass"])
    ghost.wait()
    now = time.time()
    host = socket.gethostname()
    (readers / "dead.json").write_text(
        json.dumps({"reader": "dead", "pid": ghost.pid, "host": host, "served": 1, "heartbeat": now})
    )
    (readers / "far.json").write_text(
        json.dumps({"reader": "far", "pid": 1, "host": "elsewhere", "served": 1, "heartbeat": now - 3600})
    )
    with httpx.Client(timeout=60) as client:
        wait_reported(client, url, {(good, good)})
        assert not (readers / "dead.json").exists() and (readers / "far.json").exists()

        # A generation built with another embedding model: every replica refuses it and serves on.
        bad = good + 1
        shutil.copytree(gens.path(good), gens.path(bad))
        (gens.path(bad) / "index.json").write_text('{"model": "another/model", "dimension": 384}', encoding="utf-8")
        with gens.locked():
            gens.publish(bad)
        deadline = time.monotonic() + 15
        while True:
            generation = client.get(f"{url}/readyz").json()["generation"]
            refused = [r.get("refused", {}).get("generation") for r in generation["replicas"]]
            if refused == [bad] * REPLICAS:
                break
            assert time.monotonic() < deadline, generation
            time.sleep(0.2)
        assert generation["served"] == good and generation["published"] == bad
        assert generation["refused"]["generation"] == bad and "another/model" in generation["refused"]["error"]
        assert all(r["served"] == good and r["loaded"] for r in generation["replicas"])
        assert finds(client, url, FLUX, "flux.md")
        metrics = client.get(f"{url}/metrics").text
        assert f'ragline_index_generation{{which="served"}} {good}.0' in metrics
        assert metrics.count("ragline_index_generation_replica{replica=") == REPLICAS
        status = subprocess.run(
            [sys.executable, "-m", "ragline.cli", "status", "--json"],
            capture_output=True, text=True, timeout=300, env={**os.environ, "RAGLINE_DATA_DIR": str(data)},
        )  # fmt: skip
        assert status.returncode == 0, status.stderr
        listed = json.loads(status.stdout)["generation"]["readers"]
        assert len(listed) == REPLICAS and all(r["refused"]["generation"] == bad for r in listed)

        with gens.locked():  # back to the good one: nothing refused any more
            gens.publish(good)
        deadline = time.monotonic() + 15  # each replica's record drops its refusal within its next look
        while "refused" in (generation := client.get(f"{url}/readyz").json()["generation"]):
            assert time.monotonic() < deadline, generation
            time.sleep(0.2)
        assert generations_reported(client, url) == {(good, good)}
        assert not [r for r in generation["replicas"] if "refused" in r]
