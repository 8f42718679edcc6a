"""What every engine must serve alike on the OpenAI-compatible /v1/ routes; ``ServingContract`` (contract.py)
inherits it, so each engine's module runs it against its own ``base_url``.

Checked with the real ``openai`` client: unknown models, max_tokens and finish_reason, tool and developer
messages, embeddings, and OpenAI's 400s for invalid requests. Answers stay short (a few tokens each).
"""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from .helpers import KEY, SITE, auth

FLUX = "How do I calibrate the flux widget?"
EMBEDDING_MODEL = "sentence-transformers/all-MiniLM-L6-v2"  # the index's, as /v1/models lists it


class OpenAIContract:
    def test_chat_completion_through_the_openai_client(self, base_url: str) -> None:
        llm = openai.OpenAI(base_url=f"{base_url}/v1", api_key=KEY["acme"], max_retries=0)
        resp = llm.chat.completions.create(
            model="ragline",
            messages=[
                {"role": "user", "content": "I have a flux widget."},
                {"role": "assistant", "content": "Good. What would you like to know about it?"},
                {"role": "user", "content": FLUX},
            ],
            extra_body={"mode": "generative"},
        )
        content = resp.choices[0].message.content or ""
        assert "Sources:" in content and SITE["acme"] + "/flux.html" in content
        extra: dict[str, Any] = resp.model_extra or {}
        assert extra["citations"][0]["source"].startswith(SITE["acme"] + "/flux.html")
        assert resp.usage is not None and resp.usage.completion_tokens > 0

    def test_chat_completion_streams_through_the_openai_client(self, base_url: str) -> None:
        llm = openai.OpenAI(base_url=f"{base_url}/v1", api_key=KEY["acme"], max_retries=0)
        stream = llm.chat.completions.create(
            model="ragline",
            messages=[{"role": "user", "content": FLUX}],
            stream=True,
            stream_options={"include_usage": True},
            extra_body={"mode": "generative"},
        )
        chunks = list(stream)
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text.strip() and "Sources:" in text
        final = [c for c in chunks if c.choices and c.choices[0].finish_reason == "stop"]
        assert len(final) == 1 and (final[0].model_extra or {})["citations"]
        assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0

    def test_models_lists_ragline_and_the_embedding_model(self, base_url: str) -> None:
        llm = openai.OpenAI(base_url=f"{base_url}/v1", api_key=KEY["globex"], max_retries=0)
        listed = llm.models.list().data
        assert [m.id for m in listed] == ["ragline", EMBEDDING_MODEL]
        # The chat model names the language model behind it (as answers do), never its endpoint.
        root = (listed[0].model_extra or {})["root"]
        assert root.startswith(("llama-cpp:", "openai:")) and "://" not in root
        assert "root" not in (listed[1].model_extra or {})
        for model_id in ("ragline", EMBEDDING_MODEL):
            assert llm.models.retrieve(model_id).id == model_id
        with pytest.raises(openai.NotFoundError) as info:
            llm.models.retrieve("gpt-4o")
        assert info.value.code == "model_not_found" and info.value.type == "invalid_request_error"

    def test_an_unknown_model_is_404_model_not_found(self, base_url: str) -> None:
        llm = openai.OpenAI(base_url=f"{base_url}/v1", api_key=KEY["acme"], max_retries=0)
        with pytest.raises(openai.NotFoundError) as info:
            llm.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": FLUX}])
        assert (info.value.code, info.value.param) == ("model_not_found", "model")
        assert "'ragline'" in info.value.message
        with pytest.raises(openai.NotFoundError) as info:
            llm.embeddings.create(model="ragline", input="x")
        assert (info.value.code, info.value.param) == ("model_not_found", "model")

    def test_max_tokens_cuts_the_answer_and_says_length(self, base_url: str) -> None:
        """The answer holds at most max_tokens tokens, the model's or the extract's; the smaller of max_tokens
        and max_completion_tokens applies."""
        llm = openai.OpenAI(base_url=f"{base_url}/v1", api_key=KEY["acme"], max_retries=0)
        ask: dict[str, Any] = {"model": "ragline", "messages": [{"role": "user", "content": FLUX}]}
        whole = llm.chat.completions.create(**ask, extra_body={"mode": "extractive"})
        assert whole.choices[0].finish_reason == "stop"
        full = (whole.choices[0].message.content or "").split("\n\nSources:")[0]
        cut = llm.chat.completions.create(
            **ask, max_tokens=40, max_completion_tokens=6, extra_body={"mode": "extractive"}
        )
        assert cut.choices[0].finish_reason == "length"
        short = (cut.choices[0].message.content or "").split("\n\nSources:")[0]
        assert short and full.startswith(short) and len(short.split()) <= 6 < len(full.split())
        generated = llm.chat.completions.create(**ask, max_tokens=5, extra_body={"mode": "generative"})
        assert generated.choices[0].finish_reason == "length"
        assert generated.usage is not None and 0 < generated.usage.completion_tokens <= 5
        assert generated.usage.total_tokens == generated.usage.prompt_tokens + generated.usage.completion_tokens
        chunks = list(llm.chat.completions.create(**ask, max_tokens=5, stream=True, extra_body={"mode": "generative"}))
        assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["length"]

    def test_tool_and_developer_messages_are_accepted_tools_not_required(self, base_url: str) -> None:
        llm = openai.OpenAI(base_url=f"{base_url}/v1", api_key=KEY["acme"], max_retries=0)
        tools: Any = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
        call: Any = {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}
        messages: Any = [
            {"role": "developer", "content": "Answer briefly."},
            {"role": "user", "content": "I have a flux widget."},
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "call_1", "content": "widget model FX-9"},
            {"role": "user", "content": FLUX},
        ]
        resp = llm.chat.completions.create(
            model="ragline", messages=messages, tools=tools, tool_choice="auto", extra_body={"mode": "extractive"}
        )
        assert resp.choices[0].message.tool_calls is None
        assert SITE["acme"] + "/flux.html" in (resp.choices[0].message.content or "")
        with pytest.raises(openai.BadRequestError) as info:
            llm.chat.completions.create(model="ragline", messages=messages, tools=tools, tool_choice="required")
        assert info.value.param == "tool_choice" and "calls no tools" in info.value.message

    def test_embeddings_with_the_index_model(self, base_url: str) -> None:
        llm = openai.OpenAI(base_url=f"{base_url}/v1", api_key=KEY["acme"], max_retries=0)
        texts = [FLUX, "turn the blue lever to calibrate the flux widget", "lemon brine cools the reactor"]
        floats = llm.embeddings.create(model=EMBEDDING_MODEL, input=texts, encoding_format="float")
        packed = llm.embeddings.create(model=EMBEDDING_MODEL.rsplit("/")[-1], input=texts)  # base64 on the wire
        assert floats.model == packed.model == EMBEDDING_MODEL
        assert [d.index for d in floats.data] == [0, 1, 2] and floats.usage.prompt_tokens > 10
        vectors = [d.embedding for d in floats.data]
        assert {len(v) for v in vectors} == {384}
        for a, b in zip(vectors, (d.embedding for d in packed.data), strict=True):
            assert max(abs(x - y) for x, y in zip(a, b, strict=True)) < 1e-6

        def cos(a: list[float], b: list[float]) -> float:
            return sum(x * y for x, y in zip(a, b, strict=True))  # the vectors are normalised

        assert cos(vectors[0], vectors[1]) > cos(vectors[0], vectors[2]) + 0.2
        one = llm.embeddings.create(model=EMBEDDING_MODEL, input="autoscaling", encoding_format="float")
        assert len(one.data) == 1 and len(one.data[0].embedding) == 384

    @pytest.mark.parametrize(
        ("body", "param"),
        [
            ({"model": "ragline", "messages": []}, "messages"),
            ({"model": "ragline", "messages": [{"role": "system", "content": "hi"}]}, "messages"),
            ({"model": "ragline", "messages": [{"role": "wizard", "content": "hi"}]}, "messages[0].role"),
            ({"model": "ragline", "messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
            ({"model": "ragline", "messages": [{"role": "user", "content": "   "}]}, "messages[0].content"),
            ({"model": "ragline", "messages": "hello"}, "messages"),
            ({"messages": [{"role": "user", "content": "q"}], "max_tokens": 0}, "max_tokens"),
            ({"messages": [{"role": "user", "content": "q"}], "max_completion_tokens": "9"}, "max_completion_tokens"),
            ({"messages": [{"role": "user", "content": "q"}], "temperature": 3}, "temperature"),
            ({"messages": [{"role": "user", "content": "q"}], "n": 2}, "n"),
            (
                {"messages": [{"role": "user", "content": "q"}], "response_format": {"type": "json_object"}},
                "response_format",
            ),
            ({"messages": [{"role": "user", "content": "q"}], "k": 10**6}, "k"),
            ({"messages": [{"role": "user", "content": "q" * 20_001}]}, "messages[0].content"),
            ({"model": EMBEDDING_MODEL, "input": []}, "input"),
            ({"model": EMBEDDING_MODEL, "input": ["ok", ""]}, "input"),
            ({"model": EMBEDDING_MODEL, "input": ["x"] * 2049}, "input"),
            ({"model": EMBEDDING_MODEL, "input": "x" * 8001}, "input"),
            ({"model": EMBEDDING_MODEL, "input": [[1, 2, 3]]}, "input"),
            ({"model": EMBEDDING_MODEL, "input": ["fine", "  "]}, "input[1]"),
            ({"model": EMBEDDING_MODEL, "input": "x", "encoding_format": "int8"}, "encoding_format"),
            ({"model": EMBEDDING_MODEL, "input": "x", "dimensions": 1024}, "dimensions"),
            ({"input": "x"}, "model"),
        ],
    )
    def test_openai_routes_answer_bad_requests_with_openai_400s(
        self, base_url: str, client: httpx.Client, body: dict[str, Any], param: str | None
    ) -> None:
        path = "/v1/embeddings" if "input" in body else "/v1/chat/completions"
        r = client.post(f"{base_url}{path}", json=body, headers=auth("acme"))
        assert r.status_code in (400, 413), r.text
        error = r.json()["error"]
        if r.status_code == 413:  # the body limit answers first, in ragline's shape
            assert "larger than" in error["message"]
            return
        assert set(error) == {"message", "type", "param", "code"} and error["type"] == "invalid_request_error"
        assert error["message"] and isinstance(error["code"], str)
        if param is not None:
            assert error["param"] == param, error
        assert "Traceback" not in r.text
