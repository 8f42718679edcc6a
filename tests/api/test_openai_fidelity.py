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

from .helpers import KEY, SITE, app_settings, auth, serve_in_process
from .openai_contract import EMBEDDING_MODEL, FLUX

pytestmark = pytest.mark.slow

ANSWER_LIMIT = 40  # llm.max_tokens of app_settings: the server's own answer limit


@pytest.fixture(scope="module")
def base_url(index_dir: Path, llm: LlamaServer) -> Iterator[str]:
    settings = app_settings(
        index_dir,
        llm={"backend": "openai", "base_url": llm.base_url, "model": MODEL_ALIAS, "max_retries": 0, "timeout": 30},
        max_query_chars=300,  # no question can overflow the test server's 2048-token window
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


def test_schemathesis_v1_routes_answer_openai_errors_never_5xx(base_url: str) -> None:
    """Positive and negative cases for each /v1/ operation: never a 5xx, and every error in OpenAI's shape
    with OpenAI's statuses (400, not 422)."""
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis.errors import Unsatisfiable
    from schemathesis import GenerationMode

    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    failures: list[str] = []
    seen: set[str] = set()
    headers = auth("acme")
    for result in schema.get_all_operations():
        operation = result.ok()
        if not operation.path.startswith("/v1/"):
            continue
        answers = operation.path == "/v1/chat/completions"
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            # An answer costs the model up to ANSWER_LIMIT tokens: fewer of them.
            examples = 8 if answers and mode is GenerationMode.POSITIVE else 30

            @given(case=operation.as_strategy(generation_mode=mode, headers=headers))
            @settings(
                max_examples=examples,
                deadline=None,
                database=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            def run(case: Any) -> None:
                seen.add(case.operation.path)
                response = case.call(base_url=base_url, headers=headers, timeout=120)
                where = f"{case.method} {case.path} {case.body!r:.200} -> {response.status_code} {response.text:.300}"
                if response.status_code >= 500 or response.status_code == 422:
                    failures.append(where)
                elif response.status_code >= 400 and response.status_code != 413:
                    error = response.json().get("error", {})
                    if set(error) != {"message", "type", "param", "code"} or not error["message"]:
                        failures.append(f"not OpenAI's error shape: {where}")

            try:
                run()
            except Unsatisfiable:
                continue
    assert seen == {"/v1/chat/completions", "/v1/embeddings", "/v1/models", "/v1/models/{model_id}"}
    assert not failures, "\n".join(failures)
