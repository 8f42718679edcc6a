"""Limits and degraded modes on the in-process engine: request deadline, retrieval-only fallback, stream slots,
CORS, and a server without API keys. Each test serves its own app (real uvicorn, real models) over the index."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from llm_server import free_port

from ragline.config import Settings

from .contract import FLUX, REACTOR, sse_events
from .held_llm import held_llm
from .helpers import SITE, app_settings, auth, serve_in_process

pytestmark = pytest.mark.slow


def test_a_slow_answer_hits_the_request_deadline_with_504(index_dir: Path, client: httpx.Client) -> None:
    with held_llm() as llm:  # an answer that takes as long as the test says
        held = {"backend": "openai", "base_url": llm.base_url, "model": "held", "max_retries": 0}  # type: ignore[attr-defined]
        _a_slow_answer_hits_the_deadline(app_settings(index_dir, llm=held, request_timeout=1.0), client)


def _a_slow_answer_hits_the_deadline(settings: Settings, client: httpx.Client) -> None:
    with serve_in_process(settings) as url:
        timeout = {"message": "the answer took longer than 1 s", "type": "timeout", "code": 504}
        r = client.post(f"{url}/query", json={"query": FLUX, "mode": "generative"}, headers=auth("acme"))
        assert r.status_code == 504, r.text
        assert r.json()["error"] == timeout

        # A stream under way (the held model sent its first sentence at once) ends with the timeout as its
        # last event, after no done event.
        r = client.post(
            f"{url}/query", json={"query": FLUX, "stream": True, "mode": "generative"}, headers=auth("acme")
        )
        assert r.status_code == 200, r.text
        events = sse_events(r.text)
        names = [name for name, _ in events]
        assert names[0] == "token" and names[-1] == "error" and "done" not in names, names
        assert json.loads(events[-1][1])["error"] == timeout
        assert client.get(f"{url}/healthz").status_code == 200


def test_llm_down_without_fallback_is_503_without_internal_details(index_dir: Path, client: httpx.Client) -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1"
    settings = app_settings(index_dir, llm={"backend": "openai", "base_url": dead, "max_retries": 0})
    with serve_in_process(settings) as url:
        r = client.post(f"{url}/query", json={"query": FLUX, "mode": "generative"}, headers=auth("acme"))
        assert r.status_code == 503
        assert r.json()["error"]["message"] == "the language model is unavailable; try again later"
        ready = client.get(f"{url}/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["index"] == "ok"
        # auto, the default with a configured endpoint, answers from the documentation and says why.
        auto = client.post(f"{url}/query", json={"query": FLUX}, headers=auth("acme"))
        assert auto.status_code == 200, auto.text
        body = auto.json()
        assert body["mode"] == "extractive" and "language model is unavailable" in body["fallback"]
        assert "blue lever" in body["answer"] and "[1]" in body["answer"]
        for response in (r, ready, auto):
            assert "127.0.0.1" not in response.text and "Traceback" not in response.text


def test_llm_down_with_fallback_answers_with_citations_only(index_dir: Path, client: httpx.Client) -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1"
    settings = app_settings(
        index_dir, llm={"backend": "openai", "base_url": dead, "max_retries": 0}, retrieval_only_fallback=True
    )
    with serve_in_process(settings) as url:
        generative = {"mode": "generative"}
        r = client.post(f"{url}/query", json={"query": FLUX, "k": 2, **generative}, headers=auth("acme"))
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["llm"].startswith("none") and "language model is unavailable" in body["answer"]
        assert body["citations"][0]["source"].startswith(SITE["acme"] + "/flux.html")

        streamed = client.post(
            f"{url}/query", json={"query": FLUX, "k": 2, "stream": True, **generative}, headers=auth("acme")
        )
        names = [name for name, _ in sse_events(streamed.text)]
        assert names == ["token", "citations", "done"]

        chat = client.post(
            f"{url}/v1/chat/completions",
            json={"model": "ragline", "messages": [{"role": "user", "content": REACTOR}], **generative},
            headers=auth("globex"),
        )
        assert chat.status_code == 200, chat.text
        content = chat.json()["choices"][0]["message"]["content"]
        assert "language model is unavailable" in content and SITE["globex"] + "/reactor.html" in content
        assert "ragline_retrieval_only_answers_total 3.0" in client.get(f"{url}/metrics").text


def test_streams_over_the_limit_get_429_and_cors_and_no_keys(index_dir: Path, client: httpx.Client) -> None:
    with held_llm() as llm:
        settings = app_settings(
            index_dir,
            llm={"backend": "openai", "base_url": llm.base_url, "model": "held", "max_retries": 0},  # type: ignore[attr-defined]
            api_keys={},
            max_concurrent_streams=1,
            cors_origins=["https://app.example"],
        )
        _streams_over_the_limit(settings, llm, client)


def _streams_over_the_limit(settings: Settings, llm: Any, client: httpx.Client) -> None:
    with serve_in_process(settings) as url:
        # Without keys there are no tenants: every chunk is visible, and no header is needed.
        hits = client.post(f"{url}/search", json={"query": "reactor flux widget", "k": 10}).json()["hits"]
        assert {h["source"].split("/")[2] for h in hits} == {"docs.acme.example", "docs.globex.example"}

        first: list[httpx.Response] = []
        worker = threading.Thread(
            target=lambda: first.append(
                httpx.post(f"{url}/query", json={"query": FLUX, "stream": True, "mode": "generative"}, timeout=300)
            )
        )
        worker.start()
        assert llm.started.wait(120), "the first stream never reached the model"
        deadline = time.monotonic() + 60  # the model holds the stream: it is under way until released
        while "ragline_streams_active 1.0" not in client.get(f"{url}/metrics").text:
            assert time.monotonic() < deadline and worker.is_alive(), "the first stream never started"
            time.sleep(0.05)
        second = client.post(f"{url}/query", json={"query": FLUX, "stream": True, "mode": "generative"})
        assert second.status_code == 429
        assert "too many answers are streaming (limit 1)" in second.json()["error"]["message"]
        llm.release.set()
        worker.join(timeout=300)
        assert first[0].status_code == 200 and sse_events(first[0].text)[-1][0] == "done"
        assert json.loads(sse_events(first[0].text)[-1][1])["answer"]
        # the slot is free again
        again = client.post(f"{url}/query", json={"query": FLUX, "k": 1, "stream": True, "mode": "generative"})
        assert again.status_code == 200

        preflight = {"Origin": "https://app.example", "Access-Control-Request-Method": "POST"}
        ok = client.options(f"{url}/query", headers=preflight)
        assert ok.headers["access-control-allow-origin"] == "https://app.example"
        other = client.options(f"{url}/query", headers={**preflight, "Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers
