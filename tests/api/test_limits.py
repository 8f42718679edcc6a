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


def test_answers_over_the_limit_get_503_and_cors_and_no_keys(index_dir: Path, client: httpx.Client) -> None:
    with held_llm() as llm:
        settings = app_settings(
            index_dir,
            llm={"backend": "openai", "base_url": llm.base_url, "model": "held", "max_retries": 0},  # type: ignore[attr-defined]
            api_keys={},
            max_concurrent_answers=1,
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
        assert second.status_code == 503 and second.headers["retry-after"] == "2"
        assert second.json()["error"] == {
            "message": "the server is answering as many questions as it can (1); retry in a moment",
            "type": "overloaded",
            "code": 503,
        }
        # Without keys there is no tenant share: the process limit is the only one.
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


def test_answers_are_bounded_per_tenant_and_per_process_while_search_stays_up(
    index_dir: Path, client: httpx.Client
) -> None:
    with held_llm(hold_first=True) as llm:  # every answer waits for its first token until released
        settings = app_settings(
            index_dir,
            llm={"backend": "openai", "base_url": llm.base_url, "model": "held", "max_retries": 0},  # type: ignore[attr-defined]
            max_concurrent_answers=3,
            max_answers_per_tenant=2,
            sse_keepalive=0.2,
        )
        _bounded(settings, llm, client)


def _bounded(settings: Settings, llm: Any, client: httpx.Client) -> None:
    ask = {"query": FLUX, "mode": "generative"}
    with serve_in_process(settings) as url:
        answers: list[httpx.Response] = []

        def post(tenant: str) -> None:
            answers.append(httpx.post(f"{url}/query", json=ask, headers=auth(tenant), timeout=120))

        held = [threading.Thread(target=post, args=("acme",)) for _ in range(2)]
        for thread in held:  # non-streaming answers take slots too
            thread.start()
        _until(lambda: llm.requests == 2, "two answers never reached the model")

        over_share = client.post(f"{url}/query", json=ask, headers=auth("acme"))
        assert over_share.status_code == 429 and over_share.headers["retry-after"] == "2"
        assert over_share.json()["error"]["type"] == "rate_limited"
        assert "already has 2 answers in progress" in over_share.json()["error"]["message"]

        # globex still has its share; its stream starts although the first token is late, with keep-alives.
        with client.stream(
            "POST", f"{url}/query", json={**ask, "query": REACTOR, "stream": True}, headers=auth("globex")
        ) as stream:
            assert stream.status_code == 200
            lines = stream.iter_lines()
            assert next(lines) == ": keep-alive"
            assert llm.requests == 3

            full = client.post(f"{url}/query", json={**ask, "query": REACTOR}, headers=auth("globex"))
            assert full.status_code == 503 and full.headers["retry-after"] == "2"
            assert full.json()["error"]["type"] == "overloaded"
            chat = client.post(
                f"{url}/v1/chat/completions",
                json={"model": "ragline", "messages": [{"role": "user", "content": REACTOR}]},
                headers=auth("globex"),
            )
            assert chat.status_code == 503 and chat.headers["retry-after"] == "2"

            # Searches and probes need no slot and no answer thread: they answer while every slot is taken.
            found = client.post(f"{url}/search", json={"query": FLUX, "k": 2}, headers=auth("acme"))
            assert found.status_code == 200 and found.json()["hits"]
            assert client.get(f"{url}/healthz").status_code == 200
            assert client.get(f"{url}/readyz").status_code == 200
            assert llm.requests == 3  # the refused ones never reached the model

            llm.release.set()
            rest = "\n".join(lines)
        assert "event: done" in rest and "event: error" not in rest
        for thread in held:
            thread.join(timeout=120)
        assert [a.status_code for a in answers] == [200, 200]
        assert all(a.json()["answer"] for a in answers)
        # Every slot is free again.
        again = client.post(f"{url}/query", json=ask, headers=auth("acme"))
        assert again.status_code == 200, again.text


def _until(condition: Any, message: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, message
        time.sleep(0.05)
