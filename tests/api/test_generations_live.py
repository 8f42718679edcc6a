"""A running server follows the published generation: `ragline ingest` (a subprocess) builds and publishes a new
one beside the generation served, and the server answers from it without a restart and without failing a request."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from .helpers import app_settings, serve_in_process

pytestmark = pytest.mark.slow


def test_a_server_moves_to_a_new_generation_without_failing_a_request(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "flux.md").write_text(
        "# Flux\n\n## Calibrating\n\nTo calibrate the flux widget, turn the blue lever three times.\n", encoding="utf-8"
    )
    data = tmp_path / "data"
    env = {**os.environ, "RAGLINE_DATA_DIR": str(data)}

    def ingest() -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "ragline.cli", "ingest", str(docs)]
        return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)

    assert ingest().returncode == 0
    statuses: list[int] = []
    stop = threading.Event()

    with serve_in_process(app_settings(data, api_keys={})) as url, httpx.Client(timeout=60) as client:

        def load() -> None:  # a bounded stream of searches, one after another, for the whole test
            while not stop.is_set() and len(statuses) < 2000:
                r = client.post(f"{url}/search", json={"query": "how to calibrate the flux widget", "k": 2})
                statuses.append(r.status_code)

        def hammock_found() -> bool:
            r = client.post(f"{url}/search", json={"query": "when does project hammock launch", "k": 2})
            return r.status_code == 200 and "hammock.md" in r.text

        assert client.get(f"{url}/readyz").json()["generation"]["served"] == 1
        worker = threading.Thread(target=load)
        worker.start()
        try:
            (docs / "hammock.md").write_text(
                "# Hammock\n\n## Launch\n\nProject Hammock launches on 12 March from the orbital yard.\n",
                encoding="utf-8",
            )
            built = ingest()  # refused before generations: the server holds the index it serves
            assert built.returncode == 0, built.stderr
            published = time.monotonic()
            while not hammock_found():
                assert time.monotonic() - published < 10, "the server did not move to the new generation"
                time.sleep(0.1)
            moved_after = time.monotonic() - published
        finally:
            stop.set()
            worker.join(timeout=120)
        ready = client.get(f"{url}/readyz").json()
        assert ready["generation"] == {"served": 2, "published": 2}
        metrics = client.get(f"{url}/metrics").text
        assert 'ragline_index_generation{which="served"} 2.0' in metrics

    assert statuses and set(statuses) == {200}, f"{len(statuses)} requests, statuses {set(statuses)}"
    assert moved_after < 5
