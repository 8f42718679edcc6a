"""Limits and degraded modes on the in-process engine: request deadline, retrieval-only fallback, stream slots,
CORS, and a server without API keys. Each test serves its own app (real uvicorn, real models) over the index."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import httpx
import pytest
from llm_server import free_port

from .contract import FLUX, REACTOR, sse_events
from .helpers import SITE, app_settings, auth, serve_in_process

pytestmark = pytest.mark.slow


def test_a_slow_answer_hits_the_request_deadline_with_504(index_dir: Path, client: httpx.Client) -> None:
    settings = app_settings(index_dir, llm={"max_tokens": 200}, request_timeout=1.0)
    with serve_in_process(settings) as url:
        timeout = {"message": "the answer took longer than 1 s", "type": "timeout", "code": 504}
        r = client.post(f"{url}/query", json={"query": FLUX}, headers=auth("acme"))
        assert r.status_code == 504, r.text
        assert r.json()["error"] == timeout

        # A stream that has not sent its headers yet answers 504; one already under way (200) ends with
        # the timeout as its last event, after no done event. Which one happens depends on how fast the
        # first token comes, so both are checked for what they must carry.
        r = client.post(f"{url}/query", json={"query": FLUX, "stream": True}, headers=auth("acme"))
        if r.status_code == 504:
            assert r.json()["error"] == timeout
        else:
            assert r.status_code == 200, r.text
            events = sse_events(r.text)
            names = [name for name, _ in events]
            assert names[-1] == "error" and "done" not in names, names
            assert json.loads(events[-1][1])["error"] == timeout
        assert client.get(f"{url}/healthz").status_code == 200


def test_llm_down_without_fallback_is_503_without_internal_details(index_dir: Path, client: httpx.Client) -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1"
    settings = app_settings(index_dir, llm={"backend": "openai", "base_url": dead, "max_retries": 0})
    with serve_in_process(settings) as url:
        r = client.post(f"{url}/query", json={"query": FLUX}, headers=auth("acme"))
        assert r.status_code == 503
        assert r.json()["error"]["message"] == "the language model is unavailable; try again later"
        ready = client.get(f"{url}/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["index"] == "ok"
        for response in (r, ready):
            assert "127.0.0.1" not in response.text and "Traceback" not in response.text


def test_llm_down_with_fallback_answers_with_citations_only(index_dir: Path, client: httpx.Client) -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1"
    settings = app_settings(
        index_dir, llm={"backend": "openai", "base_url": dead, "max_retries": 0}, retrieval_only_fallback=True
    )
    with serve_in_process(settings) as url:
        r = client.post(f"{url}/query", json={"query": FLUX, "k": 2}, headers=auth("acme"))
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["llm"].startswith("none") and "language model is unavailable" in body["answer"]
        assert body["citations"][0]["source"].startswith(SITE["acme"] + "/flux.html")

        streamed = client.post(f"{url}/query", json={"query": FLUX, "k": 2, "stream": True}, headers=auth("acme"))
        names = [name for name, _ in sse_events(streamed.text)]
        assert names == ["token", "citations", "done"]

        chat = client.post(
            f"{url}/v1/chat/completions",
            json={"model": "ragline", "messages": [{"role": "user", "content": REACTOR}]},
            headers=auth("globex"),
        )
        assert chat.status_code == 200, chat.text
        content = chat.json()["choices"][0]["message"]["content"]
        assert "language model is unavailable" in content and SITE["globex"] + "/reactor.html" in content
        assert "ragline_retrieval_only_answers_total 3.0" in client.get(f"{url}/metrics").text


def test_streams_over_the_limit_get_429_and_cors_and_no_keys(index_dir: Path, client: httpx.Client) -> None:
    settings = app_settings(
        index_dir,
        llm={"max_tokens": 200},
        api_keys={},
        max_concurrent_streams=1,
        cors_origins=["https://app.example"],
    )
    with serve_in_process(settings) as url:
        # Without keys there are no tenants: every chunk is visible, and no header is needed.
        hits = client.post(f"{url}/search", json={"query": "reactor flux widget", "k": 10}).json()["hits"]
        assert {h["source"].split("/")[2] for h in hits} == {"docs.acme.example", "docs.globex.example"}

        first: list[httpx.Response] = []
        worker = threading.Thread(
            target=lambda: first.append(httpx.post(f"{url}/query", json={"query": FLUX, "stream": True}, timeout=300))
        )
        worker.start()
        deadline = time.monotonic() + 120
        while "ragline_streams_active 1.0" not in client.get(f"{url}/metrics").text:
            assert time.monotonic() < deadline and worker.is_alive(), "the first stream never started"
            time.sleep(0.05)
        second = client.post(f"{url}/query", json={"query": FLUX, "stream": True})
        assert second.status_code == 429
        assert "too many answers are streaming (limit 1)" in second.json()["error"]["message"]
        worker.join(timeout=300)
        assert first[0].status_code == 200 and sse_events(first[0].text)[-1][0] == "done"
        assert json.loads(sse_events(first[0].text)[-1][1])["answer"]
        # the slot is free again
        again = client.post(f"{url}/query", json={"query": FLUX, "k": 1, "stream": True})
        assert again.status_code == 200

        preflight = {"Origin": "https://app.example", "Access-Control-Request-Method": "POST"}
        ok = client.options(f"{url}/query", headers=preflight)
        assert ok.headers["access-control-allow-origin"] == "https://app.example"
        other = client.options(f"{url}/query", headers={**preflight, "Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers
