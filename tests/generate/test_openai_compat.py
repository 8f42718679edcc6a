"""The OpenAI-compatible backend against a real llama.cpp server on loopback."""

from __future__ import annotations

import time

import pytest
from llm_server import MODEL_ALIAS, LlamaServer, free_port

from ragline.config import LLMSettings
from ragline.errors import ConfigError, GenerationError, LLMTimeoutError, LLMUnavailableError
from ragline.generate import Generator, make_generator
from ragline.generate.openai_compat import OpenAICompatGenerator

from .contract import GeneratorContract

pytestmark = pytest.mark.slow

pytest.importorskip("openai")

MAX_TOKENS = 32
MESSAGES = [
    {"role": "system", "content": "Answer only from the context. Cite it as [1]."},
    {
        "role": "user",
        "content": "[1] Ray Serve — Scaling\nA deployment scales with num_replicas; the default is 1.\n\n"
        "Question: How do I scale a Ray Serve deployment?",
    },
]


def test_make_generator_requires_an_endpoint() -> None:
    with pytest.raises(ConfigError, match="base_url"):
        make_generator(LLMSettings(backend="openai"))
    g = make_generator(LLMSettings(backend="openai", api_key="sk-test", model="gpt-4o-mini"))
    assert g.name == "openai:gpt-4o-mini"


def test_name_and_token_count_without_a_server() -> None:
    g = make_generator(LLMSettings(backend="openai", base_url="http://127.0.0.1:9/v1/", model="m"))
    assert isinstance(g, OpenAICompatGenerator) and isinstance(g, Generator)
    assert g.name == "openai:m"
    secret = make_generator(LLMSettings(backend="openai", base_url="http://user:pass@10.0.0.9/v1", model="echo"))
    assert secret.name == "openai:echo" and "pass" not in secret.name  # answers carry it: no endpoint
    assert g.count_tokens("") == 0
    assert 40 <= g.count_tokens("hello " * 50) <= 110  # tiktoken (50) or chars/3 (100)


class TestOpenAICompatContract(GeneratorContract):
    @pytest.fixture()
    def generator(self, server_settings: LLMSettings) -> Generator:
        return make_generator(server_settings)


def test_the_stream_counts_the_prompt_close_to_the_server(server_settings: LLMSettings) -> None:
    """llama-cpp-python's server ignores stream_options, so the stream's usage is counted locally
    (cl100k): close to, not equal to, the server's own count."""
    g = make_generator(server_settings)
    usage = list(g.stream(MESSAGES, max_tokens=MAX_TOKENS, temperature=0.0))[-1].usage
    whole = g.generate(MESSAGES, max_tokens=MAX_TOKENS, temperature=0.0)
    assert usage is not None
    assert 0.7 * whole.usage.prompt_tokens <= usage.prompt_tokens <= 1.3 * whole.usage.prompt_tokens


def test_timeout_is_mapped(server_settings: LLMSettings) -> None:
    assert server_settings.base_url is not None
    g = make_generator(server_settings.model_copy(update={"timeout": 0.001, "max_retries": 0}))
    with pytest.raises(LLMTimeoutError) as info:
        g.generate(MESSAGES, max_tokens=MAX_TOKENS, temperature=0.0)
    assert server_settings.base_url in str(info.value) and "0.001 s" in str(info.value)


def test_unreachable_endpoint_fails_fast_naming_the_url() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    g = make_generator(LLMSettings(backend="openai", base_url=url, model=MODEL_ALIAS, timeout=5.0, max_retries=0))
    started = time.monotonic()
    with pytest.raises(LLMUnavailableError) as info:
        g.generate(MESSAGES, max_tokens=8, temperature=0.0)
    assert time.monotonic() - started < 3.0
    message = str(info.value)
    assert url in message and "Traceback" not in message and "\n" not in message
    with pytest.raises(LLMUnavailableError, match=url):
        list(g.stream(MESSAGES, max_tokens=8, temperature=0.0))
    with pytest.raises(LLMUnavailableError, match=url):
        g.check()


def test_http_error_status_is_mapped(server_settings: LLMSettings) -> None:
    # /v1 + a wrong path prefix makes every call a 404 from the real server.
    assert server_settings.base_url is not None
    broken = server_settings.model_copy(update={"base_url": server_settings.base_url + "/nope", "max_retries": 0})
    with pytest.raises(GenerationError, match="HTTP 404") as info:
        make_generator(broken).generate(MESSAGES, max_tokens=8, temperature=0.0)
    assert not isinstance(info.value, LLMUnavailableError)


def test_same_generator_survives_a_server_restart(llm_server: LlamaServer, server_settings: LLMSettings) -> None:
    g = make_generator(server_settings.model_copy(update={"max_retries": 0, "timeout": 10.0}))
    assert g.generate(MESSAGES, max_tokens=4, temperature=0.0).text
    llm_server.stop()
    try:
        with pytest.raises(LLMUnavailableError, match=llm_server.base_url):
            g.generate(MESSAGES, max_tokens=4, temperature=0.0)
        with pytest.raises(LLMUnavailableError):
            g.check()
    finally:
        llm_server.start()  # same port
    g.check()
    assert g.generate(MESSAGES, max_tokens=4, temperature=0.0).text
    assert "".join(d.text for d in g.stream(MESSAGES, max_tokens=4, temperature=0.0))


def test_credentials_in_the_url_and_an_api_key_are_refused_together() -> None:
    """Both would be the Authorization header and the URL's wins, so the configured key would never be sent."""
    both = LLMSettings(backend="openai", base_url="http://user:secret@127.0.0.1:9/v1", api_key="sk-configured")
    with pytest.raises(ConfigError, match="only one") as told:
        make_generator(both)
    assert "secret" not in str(told.value) and "sk-configured" not in str(told.value)
    # Either alone is fine: the URL's credentials, or the key.
    for alone in (
        LLMSettings(backend="openai", base_url="http://user:secret@127.0.0.1:9/v1"),
        LLMSettings(backend="openai", base_url="http://127.0.0.1:9/v1", api_key="sk-configured"),
    ):
        assert isinstance(make_generator(alone), OpenAICompatGenerator)
