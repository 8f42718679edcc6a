"""The /v1/ routes as OpenAI clients use them: the openai client (sync and streaming), LangChain's ChatOpenAI and
OpenAIEmbeddings, and schemathesis over the /v1/ operations, against the real app under uvicorn, answering through
the test llama.cpp server (the OpenAI-compatible backend). What every engine must do alike is in contract.py
(unknown models, max_tokens and finish_reason, tool messages, embeddings, OpenAI's 400s).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from llm_server import MODEL_ALIAS, LlamaServer

from .fuzzing import fuzz
from .helpers import KEY, SITE, app_settings, auth, serve_in_process
from .openai_contract import EMBEDDING_MODEL, FLUX

pytestmark = pytest.mark.slow

ANSWER_LIMIT = 40  # llm.max_tokens of app_settings: the server's own answer limit


@pytest.fixture(scope="module")
def base_url(index_dir: Path, llm: LlamaServer) -> Iterator[str]:
    settings = app_settings(
        index_dir,
        llm={"backend": "openai", "base_url": llm.base_url, "model": MODEL_ALIAS, "max_retries": 0, "timeout": 30},
        max_query_chars=300,  # no /query question can overflow the test server's 2048-token window
        max_message_chars=16_000,
    )
    assert settings.llm.max_tokens == ANSWER_LIMIT
    with serve_in_process(settings) as url:
        yield url


@pytest.fixture()
def client(base_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{base_url}/v1", api_key=KEY["acme"], max_retries=0, timeout=120)


ASK: dict[str, Any] = {"model": "ragline", "messages": [{"role": "user", "content": FLUX}]}


def test_a_completion_has_openai_s_envelope_and_usage(client: openai.OpenAI) -> None:
    resp = client.chat.completions.create(**ASK, max_tokens=12, extra_body={"mode": "generative"})
    assert resp.object == "chat.completion" and resp.id.startswith("chatcmpl-") and resp.model == "ragline"
    assert len(resp.choices) == 1 and resp.choices[0].message.role == "assistant"
    assert resp.choices[0].finish_reason in ("stop", "length")
    assert resp.usage is not None and resp.usage.prompt_tokens > 50
    assert 0 < resp.usage.completion_tokens <= 12
    assert resp.usage.total_tokens == resp.usage.prompt_tokens + resp.usage.completion_tokens


def test_max_tokens_stays_within_the_server_s_answer_limit(client: openai.OpenAI) -> None:
    resp = client.chat.completions.create(**ASK, max_tokens=100_000, extra_body={"mode": "generative"})
    assert resp.usage is not None and 0 < resp.usage.completion_tokens <= ANSWER_LIMIT
    if resp.usage.completion_tokens == ANSWER_LIMIT:
        assert resp.choices[0].finish_reason == "length"


def test_temperature_reaches_the_model(client: openai.OpenAI) -> None:
    """Greedy (0) answers repeat word for word; at 2 the model samples widely and the answer changes."""

    def answer(temperature: float) -> str:
        resp = client.chat.completions.create(
            **ASK, max_tokens=24, temperature=temperature, top_p=1.0, extra_body={"mode": "generative"}
        )
        return resp.choices[0].message.content or ""

    greedy = answer(0.0)
    assert answer(0.0) == greedy
    assert answer(2.0) != greedy


def test_streaming_chunks_and_usage(client: openai.OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(
            **ASK,
            max_completion_tokens=8,
            stream=True,
            stream_options={"include_usage": True},
            extra_body={"mode": "generative"},
        )
    )
    assert len({c.id for c in chunks}) == 1 and {c.object for c in chunks} == {"chat.completion.chunk"}
    assert chunks[0].choices[0].delta.role == "assistant"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["length"]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "Sources:" in text and SITE["acme"] + "/flux.html" in text
    usage = chunks[-1].usage
    assert chunks[-1].choices == [] and usage is not None and usage.completion_tokens == 8


def test_langchain_chat_openai_invokes_and_streams(base_url: str) -> None:
    from langchain_openai import ChatOpenAI

    chat = ChatOpenAI(
        model="ragline",
        base_url=f"{base_url}/v1",
        api_key=KEY["acme"],  # type: ignore[arg-type]
        max_tokens=10,  # type: ignore[call-arg]
        temperature=0,
        max_retries=0,
        extra_body={"mode": "generative"},
    )
    reply = chat.invoke([("system", "You are terse."), ("human", FLUX)])
    assert isinstance(reply.content, str) and "Sources:" in reply.content
    assert reply.response_metadata["finish_reason"] == "length"
    assert reply.usage_metadata is not None and 0 < reply.usage_metadata["output_tokens"] <= 10
    pieces = [c.content for c in chat.stream(FLUX)]
    assert len(pieces) > 3 and SITE["acme"] + "/flux.html" in "".join(str(p) for p in pieces)
    with pytest.raises(openai.NotFoundError, match="does not exist"):
        chat.model_copy(update={"model_name": "gpt-4o"}).invoke(FLUX)


def test_langchain_openai_embeddings_share_the_index_model(base_url: str) -> None:
    from langchain_openai import OpenAIEmbeddings

    embeddings = OpenAIEmbeddings(
        model=EMBEDDING_MODEL,
        base_url=f"{base_url}/v1",
        api_key=KEY["acme"],  # type: ignore[arg-type]
        check_embedding_ctx_length=False,
        max_retries=0,
    )
    docs = embeddings.embed_documents(["Calibrating the flux widget", "Cooling the Globex reactor"])
    query = embeddings.embed_query(FLUX)
    assert len(docs) == 2 and {len(v) for v in (*docs, query)} == {384}
    scores = [sum(a * b for a, b in zip(query, d, strict=True)) for d in docs]
    assert scores[0] > scores[1]
    # Its default batch (chunk_size 1000 texts) fits in one request, as with OpenAI.
    assert embeddings.chunk_size == 1000
    many = embeddings.embed_documents([f"widget note {i}" for i in range(1200)])
    assert len(many) == 1200 and many[7] != many[8]


def test_a_rag_prompt_holding_retrieved_context_is_answered(base_url: str, client: openai.OpenAI) -> None:
    """What a retrieval chain sends: context pasted into the user message, well over /query's question limit."""
    import httpx

    hits = httpx.post(f"{base_url}/search", json={"query": FLUX, "k": 3}, headers=auth("acme"), timeout=60).json()
    context = "\n\n".join(h["text"] for h in hits["hits"]) * 10
    prompt = f"Answer from this context only.\n\nContext:\n{context}\n\nQuestion: {FLUX}"
    assert len(prompt) > 2000  # /query's serve.max_query_chars
    resp = client.chat.completions.create(
        model="ragline", messages=[{"role": "user", "content": prompt}], max_tokens=8, extra_body={"mode": "generative"}
    )
    assert resp.choices[0].message.content and SITE["acme"] + "/flux.html" in resp.choices[0].message.content

    # Beyond what the model reads (the test server's 2048-token window): a 400 that names the window.
    with pytest.raises(openai.BadRequestError, match="context window") as told:
        client.chat.completions.create(
            model="ragline",
            messages=[{"role": "user", "content": prompt * 6}],
            max_tokens=8,
            extra_body={"mode": "generative"},
        )
    assert told.value.status_code == 400
    # Beyond serve.max_message_chars, or the schema's 20000 characters: a 400 naming the message.
    for words, said in ((3300, "max_message_chars"), (4001, "at most 20000 characters")):
        with pytest.raises(openai.BadRequestError, match=said) as told:
            client.chat.completions.create(model="ragline", messages=[{"role": "user", "content": "flux " * words}])
        assert told.value.body["param"] == "messages[0].content"  # type: ignore[index]


def test_schemathesis_every_route_keeps_to_its_schema(base_url: str) -> None:
    """Every operation, positive and negative cases: never a 5xx; every status, content type and body as the
    OpenAPI schema declares it; on /v1/ every error in OpenAI's shape with OpenAI's statuses (400, not 422)."""
    found = fuzz(base_url, auth("acme"), answers=8)  # an answer costs the model up to ANSWER_LIMIT tokens
    assert {"/v1/chat/completions", "/v1/embeddings", "/v1/models", "/query", "/search", "/sources"} <= found.seen
    assert not found.failures, "\n".join(found.failures[:20])


@pytest.mark.parametrize("text", [r"\ud800", r"flux \udfff?", r"\udb40\udc41flux\u0000"])
def test_a_lone_surrogate_reaching_the_openai_backend_is_not_a_500(base_url: str, text: str) -> None:
    import httpx

    body = (
        f'{{"model": "ragline", "mode": "generative", "max_tokens": 4, "messages": '
        f'[{{"role": "user", "content": "{text}"}}]}}'
    )
    headers = {**auth("acme"), "content-type": "application/json"}
    with httpx.Client(timeout=120) as http:
        for stream in (False, True):
            sent = body if not stream else body[:-1] + ', "stream": true}'
            r = http.post(f"{base_url}/v1/chat/completions", content=sent.encode(), headers=headers)
            assert r.status_code < 500, r.text[:300]
            assert "internal" not in r.text
        assert http.get(f"{base_url}/healthz").status_code == 200  # the connection was not reset
