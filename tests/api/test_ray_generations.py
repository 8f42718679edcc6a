"""Ray Serve replicas follow the published generation of the embedded index: a `ragline ingest` subprocess
publishes a new generation under a bounded stream of searches, and a DELETE /admin/sources publishes another;
every Retriever replica moves to each without a restart and without failing a request."""

from __future__ import annotations

import os
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
    seen = set()
    for _ in range(8):  # each readiness check reaches one Retriever replica
        generation = client.get(f"{url}/readyz").json()["generation"]
        assert generation["replica"], generation
        seen.add((generation["served"], generation["published"]))
    return seen


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
        assert generations_reported(client, url) == {(2, 2)}
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
        assert generations_reported(client, url) == {(before + 1, before + 1)}
        # a prefix that matches nothing publishes nothing
        r = client.delete(f"{url}/admin/sources", params={"prefix": str(docs / "nothing")}, headers=admin)
        assert r.status_code == 200 and r.json()["chunks"] == 0
        assert generations_reported(client, url) == {(before + 1, before + 1)}
