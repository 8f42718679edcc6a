"""What every engine must serve the same way; test modules subclass ``ServingContract`` with a ``base_url``.

Each engine's module provides a module-scoped ``base_url`` fixture for a server built with
``conftest.app_settings`` (API keys for two tenants) over the two-tenant index.
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest

from .helpers import DOCS, SITE, auth
from .openai_contract import FLUX, OpenAIContract

REACTOR = "How is the Globex reactor cooled?"
ANSWER_KEYS = {
    "question",
    "answer",
    "citations",
    "document_ids",
    "llm",
    "timings",
    "usage",
    "mode",
    "grounded",
    "fallback",
    "check",
    "search_query",
    "finish_reason",
}
CITATION_KEYS = {"n", "source", "title", "section", "chunk_id", "score", "text"}


def sse_events(text: str) -> list[tuple[str | None, str]]:
    """(event, data) pairs of a Server-Sent Events body."""
    out = []
    for block in text.split("\n\n"):
        name, data = None, []
        for line in block.splitlines():
            if line.startswith("event: "):
                name = line[len("event: ") :]
            elif line.startswith("data: "):
                data.append(line[len("data: ") :])
        if data:
            out.append((name, "\n".join(data)))
    return out


class ServingContract(OpenAIContract):
    """The OpenAI-compatible routes' part is OpenAIContract (openai_contract.py)."""

    # -- operations ----------------------------------------------------------------------------------

    def test_healthz_and_readyz(self, base_url: str, client: httpx.Client) -> None:
        assert client.get(f"{base_url}/healthz").json() == {"status": "alive"}
        ready = client.get(f"{base_url}/readyz")
        assert ready.status_code == 200, ready.text
        body = ready.json()
        body.pop("generation", None)  # the index generation served, where the backend keeps generations
        assert body == {"status": "ready", "checks": {"index": "ok", "llm": "ok"}}

    def test_openapi_documents_every_route(self, base_url: str, client: httpx.Client) -> None:
        paths = client.get(f"{base_url}/openapi.json").json()["paths"]
        for path in ("/query", "/search", "/sources", "/v1/chat/completions", "/v1/models", "/healthz", "/readyz"):
            assert path in paths
        assert "/metrics" in paths
        assert client.get(f"{base_url}/docs").status_code == 200

    # -- /query and /search --------------------------------------------------------------------------

    def test_query_returns_the_ask_json_object(self, base_url: str, client: httpx.Client) -> None:
        r = client.post(f"{base_url}/query", json={"query": FLUX, "k": 3, "mode": "generative"}, headers=auth("acme"))
        assert r.status_code == 200, r.text
        body = r.json()
        assert set(body) == ANSWER_KEYS and body["mode"] == "generative"
        assert "http" not in body["llm"] and "127.0.0.1" not in r.text  # the model is named, not its endpoint
        assert body["question"] == FLUX and body["answer"].strip()
        assert 1 <= len(body["citations"]) <= 3
        assert all(set(c) == CITATION_KEYS for c in body["citations"])
        assert body["citations"][0]["source"].startswith(SITE["acme"] + "/flux.html")
        assert body["usage"]["completion_tokens"] > 0
        assert body["timings"]["retrieve"] > 0 and body["timings"]["total"] >= body["timings"]["retrieve"]

    def test_query_answers_extractively_with_citations(self, base_url: str, client: httpx.Client) -> None:
        r = client.post(f"{base_url}/query", json={"query": FLUX, "k": 3, "mode": "extractive"}, headers=auth("acme"))
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["mode"] == "extractive" and body["usage"]["completion_tokens"] == 0
        assert body["grounded"] is True and body["check"]["citation_validity"] == 1.0
        assert re.search(r"\[1\]", body["answer"]), body["answer"]
        assert body["citations"][0]["source"].startswith(SITE["acme"] + "/flux.html")

    def test_odd_filter_keys_and_huge_integers_are_bad_requests(self, base_url: str, client: httpx.Client) -> None:
        bad = [
            {"metadata..tenant": "acme"},
            {"a.": "x"},
            {"metadata.": "x"},
            {".a": "x"},
            {"team": 99999999999999999999999},
            {"team": [1, 2**70]},
        ]
        for filters in bad:
            r = client.post(f"{base_url}/search", json={"query": FLUX, "filters": filters}, headers=auth("acme"))
            assert r.status_code == 422, (filters, r.text)
            assert r.json()["error"]["type"] == "invalid_request", r.text
        ok = client.post(f"{base_url}/search", json={"query": FLUX, "filters": {"team": 2**62}}, headers=auth("acme"))
        assert ok.status_code == 200 and ok.json()["hits"] == []

    def test_max_tokens_beyond_the_model_window_is_a_clear_4xx(self, base_url: str, client: httpx.Client) -> None:
        for mode in ("auto", "generative"):
            body = {"query": "w", "max_tokens": 3937, "mode": mode}
            r = client.post(f"{base_url}/query", json=body, headers=auth("acme"))
            assert r.status_code == 422, (mode, r.text)
            assert "max_tokens" in r.json()["error"]["message"] or "reserved for the answer" in r.text
        # Extractive answers use no model, so the model's window does not limit them.
        body = {"query": "w", "max_tokens": 3937, "mode": "extractive"}
        r = client.post(f"{base_url}/query", json=body, headers=auth("acme"))
        assert r.status_code == 200, r.text

    def test_query_streams_tokens_then_citations_then_done(self, base_url: str, client: httpx.Client) -> None:
        r = client.post(
            f"{base_url}/query",
            json={"query": FLUX, "k": 2, "stream": True, "mode": "generative"},
            headers=auth("acme"),
        )
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("text/event-stream")
        events = sse_events(r.text)
        names = [name for name, _ in events]
        assert names[0] == "token" and names[-2:] == ["citations", "done"]
        assert set(names[:-2]) == {"token"}
        text = "".join(json.loads(data)["text"] for name, data in events if name == "token")
        done = json.loads(events[-1][1])
        assert set(done) == ANSWER_KEYS and done["answer"] == text.strip()
        assert "127.0.0.1" not in r.text
        assert json.loads(events[-2][1]) == done["citations"]

    def test_an_auto_answer_streams_a_draft_first_then_the_answer_that_replaces_it(
        self, base_url: str, client: httpx.Client
    ) -> None:
        body = {"query": FLUX, "k": 2, "stream": True, "mode": "auto"}
        r = client.post(f"{base_url}/query", json=body, headers=auth("acme"))
        assert r.status_code == 200, r.text
        events = sse_events(r.text)
        names = [name for name, _ in events]
        assert names[0] == "draft" and names[-2:] == ["citations", "done"] and set(names[1:-2]) == {"token"}, names
        draft = json.loads(events[0][1])["text"]
        done = json.loads(events[-1][1])
        text = "".join(json.loads(data)["text"] for name, data in events if name == "token")
        assert done["answer"] == text.strip() and "[1]" in draft
        if done["fallback"]:  # the model's answer was not kept: the extract, which was the draft, is the answer
            assert done["answer"] == draft
        assert 0 <= done["timings"]["draft"] <= done["timings"]["total"]
        # Asked off, or a whole JSON answer: no draft is made.
        r = client.post(f"{base_url}/query", json={**body, "draft": False}, headers=auth("acme"))
        assert r.status_code == 200 and "draft" not in [name for name, _ in sse_events(r.text)]
        r = client.post(f"{base_url}/query", json={**body, "stream": False}, headers=auth("acme"))
        assert r.status_code == 200 and "draft" not in r.json()["timings"]

    def test_search_returns_hits(self, base_url: str, client: httpx.Client) -> None:
        r = client.post(f"{base_url}/search", json={"query": "lemon brine", "k": 2}, headers=auth("globex"))
        assert r.status_code == 200, r.text
        hits = r.json()["hits"]
        assert len(hits) == 2 and hits[0]["source"].startswith(SITE["globex"] + "/reactor.html")

    # -- metrics -------------------------------------------------------------------------------------

    def test_metrics_count_requests_and_time_each_stage(self, base_url: str, client: httpx.Client) -> None:
        client.post(f"{base_url}/query", json={"query": FLUX, "k": 1}, headers=auth("acme")).raise_for_status()
        client.post(f"{base_url}/query", json={"query": ""}, headers=auth("acme"))
        text = client.get(f"{base_url}/metrics").text
        assert 'ragline_http_requests_total{method="POST",route="/query",status="200"}' in text
        assert 'ragline_http_requests_total{method="POST",route="/query",status="422"}' in text
        for name in (
            'ragline_http_request_seconds_bucket{le="0.1",route="/query"}',
            "ragline_retrieval_seconds_count",
            "ragline_generation_seconds_count",
            'ragline_tokens_total{kind="completion"}',
        ):
            assert name in text, name

    # -- security ------------------------------------------------------------------------------------

    @pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong-key"}, {"Authorization": "Basic eA=="}])
    @pytest.mark.parametrize(
        ("method", "path", "body"),
        [
            ("POST", "/query", {"query": FLUX}),
            ("POST", "/search", {"query": FLUX}),
            ("POST", "/v1/chat/completions", {"model": "ragline", "messages": [{"role": "user", "content": FLUX}]}),
            ("GET", "/v1/models", None),
            ("GET", "/sources", None),
        ],
    )
    def test_no_key_or_a_wrong_key_is_401(
        self, base_url: str, client: httpx.Client, headers: dict[str, str], method: str, path: str, body: Any
    ) -> None:
        r = client.request(method, f"{base_url}{path}", json=body, headers=headers)
        assert r.status_code == 401
        assert r.headers["www-authenticate"] == "Bearer"
        error = r.json()["error"]
        if path.startswith("/v1/"):  # OpenAI's shape: the type is OpenAI's, the code ragline's kind
            assert (error["type"], error["code"], error["param"]) == ("authentication_error", "unauthorized", None)
        else:
            assert error["type"] == "unauthorized"

    @pytest.mark.parametrize(
        ("tenant", "question", "own", "other"),
        [
            ("acme", REACTOR, "acme", "globex"),
            ("acme", "When does Project Hammock launch?", "acme", "globex"),
            ("globex", FLUX, "globex", "acme"),
        ],
    )
    def test_a_tenant_never_sees_another_tenants_chunks(
        self, base_url: str, client: httpx.Client, tenant: str, question: str, own: str, other: str
    ) -> None:
        # The question is about the other tenant's documents, and even asks for them by filter.
        for filters in (None, {"tenant": other}, {"metadata.tenant": other}, {"source": SITE[other]}):
            r = client.post(
                f"{base_url}/search", json={"query": question, "k": 10, "filters": filters}, headers=auth(tenant)
            )
            assert r.status_code == 200, r.text
            sources = [h["source"] for h in r.json()["hits"]]
            assert all(s.startswith(SITE[own]) for s in sources), (filters, sources)
        r = client.post(f"{base_url}/query", json={"query": question, "k": 10}, headers=auth(tenant))
        assert r.status_code == 200, r.text
        assert all(c["source"].startswith(SITE[own]) for c in r.json()["citations"])

    def test_sources_lists_the_keys_own_documents_only(self, base_url: str, client: httpx.Client) -> None:
        titles = {
            "acme": ["Acme billing", "Flux widget manual"],
            "globex": ["Project Hammock", "Globex reactor handbook"],
        }
        for tenant, files in DOCS.items():
            r = client.get(f"{base_url}/sources", headers=auth(tenant))
            assert r.status_code == 200, r.text
            body = r.json()
            expected = sorted(f"{SITE[tenant]}/{name.removesuffix('.md')}.html" for name in files)
            assert [s["source"] for s in body["sources"]] == expected, body
            assert [s["title"] for s in body["sources"]] == titles[tenant]
            assert body["total"] == len(files) and body["truncated"] is False
        # Bounded: the first source in order, and the count of what was left out.
        r = client.get(f"{base_url}/sources", params={"limit": 1}, headers=auth("globex"))
        assert r.json() == {
            "sources": [{"source": SITE["globex"] + "/hammock.html", "title": "Project Hammock"}],
            "total": 2,
            "truncated": True,
        }
        assert client.get(f"{base_url}/sources", params={"limit": 0}, headers=auth("acme")).status_code == 422

    # -- bad requests --------------------------------------------------------------------------------

    @pytest.mark.parametrize(
        ("path", "content"),
        [
            ("/query", {"query": ""}),
            ("/query", {"query": "   "}),
            ("/query", {"query": "x" * 100_000}),
            ("/query", {"query": "why? " * 1000}),
            ("/query", {"query": FLUX, "k": 0}),
            ("/query", {"query": FLUX, "k": 10**6}),
            ("/query", {"query": FLUX, "k": -3}),
            ("/query", {"query": FLUX, "k": "five"}),
            ("/query", {"query": FLUX, "k": 2.5}),
            ("/query", {"query": 42}),
            ("/query", {"query": [FLUX]}),
            ("/query", {"query": FLUX, "stream": "maybe"}),
            ("/query", {"query": FLUX, "filters": ["source"]}),
            ("/query", {"query": FLUX, "filters": {"": "x"}}),
            ("/query", {"query": FLUX, "filters": {"source": 1.5}}),
            ("/query", {"query": FLUX, "unknown": 1}),
            ("/query", {}),
            ("/query", []),
            ("/query", None),
            ("/search", {"query": FLUX, "k": 0}),
        ],
    )
    def test_bad_requests_are_4xx_with_a_clear_message(
        self, base_url: str, client: httpx.Client, path: str, content: Any
    ) -> None:
        r = client.post(f"{base_url}{path}", json=content, headers=auth("acme"))
        assert 400 <= r.status_code < 500, r.text
        error = r.json()["error"]
        assert error["message"] and error["code"] == r.status_code
        assert "Traceback" not in r.text and "/site-packages/" not in r.text

    @pytest.mark.parametrize(
        "raw", [b"{", b'{"query": "unterminated', b"\xff\xfe", b'{"query": "a"}{"query": "b"}', b"query=flux"]
    )
    def test_broken_json_is_400(self, base_url: str, client: httpx.Client, raw: bytes) -> None:
        headers = {**auth("acme"), "content-type": "application/json"}
        r = client.post(f"{base_url}/query", content=raw, headers=headers)
        assert r.status_code in (400, 422), r.text
        assert r.json()["error"]["message"]

    def test_a_body_over_the_limit_is_413(self, base_url: str, client: httpx.Client) -> None:
        big = json.dumps({"query": FLUX, "filters": {"source": "x" * 200_000}}).encode()
        r = client.post(f"{base_url}/query", content=big, headers={**auth("acme"), "content-type": "application/json"})
        assert r.status_code == 413 and "larger than" in r.json()["error"]["message"]

        def chunks():  # no Content-Length: the limit still holds
            for _ in range(50):
                yield b" " * 10_000

        r = client.post(
            f"{base_url}/query", content=chunks(), headers={**auth("acme"), "content-type": "application/json"}
        )
        assert r.status_code == 413

    def test_unknown_routes_and_methods_are_4xx(self, base_url: str, client: httpx.Client) -> None:
        assert client.get(f"{base_url}/nowhere").status_code == 404
        assert client.get(f"{base_url}/query").status_code == 405

    # Hostile Unicode in every text a client sends: a lone surrogate (JSON allows the escape; UTF-8 cannot
    # carry it), NUL, bidi overrides, tag characters, a BOM. Sent as raw JSON so the escapes reach the server.
    @pytest.mark.parametrize(
        "text",
        [r"\ud800", r"flux \udfff capacitor", r"\u0000flux", r"\u202eflux\u202c", r"\udb40\udc41flux", r"\ufeff"],
    )
    def test_hostile_unicode_is_answered_or_refused_never_a_5xx(
        self, base_url: str, client: httpx.Client, text: str
    ) -> None:
        headers = {**auth("acme"), "content-type": "application/json"}
        bodies = [
            ("/search", f'{{"query": "{text}", "k": 2}}'),
            ("/query", f'{{"query": "{text}", "mode": "extractive"}}'),
            ("/query", f'{{"query": "flux", "mode": "extractive", "filters": {{"source": "{text}"}}}}'),
            (
                "/v1/chat/completions",
                f'{{"model": "ragline", "mode": "extractive", "messages": [{{"role": "user", "content": "{text}"}}]}}',
            ),
            ("/v1/chat/completions", f'{{"model": "{text}", "messages": [{{"role": "user", "content": "flux"}}]}}'),
            # The model reads it too (generative), in the question and in an earlier turn.
            (
                "/v1/chat/completions",
                f'{{"model": "ragline", "mode": "generative", "max_tokens": 4, "messages": [{{"role": "user", '
                f'"content": "flux?"}}, {{"role": "assistant", "content": "{text}"}}, {{"role": "user", '
                f'"content": "{text} capacitor?"}}]}}',
            ),
            ("/query", f'{{"query": "{text} flux?", "mode": "generative", "max_tokens": 4}}'),
            ("/v1/embeddings", f'{{"model": "sentence-transformers/all-MiniLM-L6-v2", "input": ["{text}"]}}'),
            # Streamed: the question comes back in the last event, after the status was sent.
            ("/query", f'{{"query": "{text}", "mode": "extractive", "stream": true}}'),
            (
                "/v1/chat/completions",
                f'{{"model": "ragline", "stream": true, "max_tokens": 4, "messages": [{{"role": "user", '
                f'"content": "{text}"}}]}}',
            ),
        ]
        for path, body in bodies:
            r = client.post(f"{base_url}{path}", content=body.encode(), headers=headers)
            assert r.status_code < 500, f"{path} {body} -> {r.status_code} {r.text[:300]}"
            if '"stream": true' in body and r.status_code == 200:
                events = sse_events(r.text)
                assert events and all(name != "error" for name, _ in events), r.text[-300:]
                assert events[-1][1] == "[DONE]" or events[-1][0] == "done", r.text[-300:]
                continue
            assert r.json()  # a JSON body either way, whatever the text held
        # A lone surrogate becomes U+FFFD at the edge: the request is answered, not refused.
        r = client.post(f"{base_url}/search", content=b'{"query": "flux \\ud800 widget", "k": 2}', headers=headers)
        assert r.status_code == 200 and r.json()["query"] == "flux \ufffd widget"
        # The connection is still good afterwards.
        assert client.get(f"{base_url}/healthz").status_code == 200
        for url in (f"{base_url}/v1/models/%ED%A0%80", f"{base_url}/sources?prefix=%ED%A0%80&k=%00"):
            assert client.get(url, headers=auth("acme")).status_code < 500
