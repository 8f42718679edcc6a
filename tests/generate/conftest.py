"""Fixtures for the generation tests: the bundled SmolLM2, embedded and behind a real server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from llm_server import MODEL_ALIAS, LlamaServer

from ragline.config import LLMSettings


@pytest.fixture(scope="session")
def llm_server() -> Iterator[LlamaServer]:
    """A llama.cpp OpenAI-compatible server on 127.0.0.1, stopped after the session."""
    with LlamaServer(n_ctx=2048, threads=2) as server:
        yield server


@pytest.fixture()
def server_settings(llm_server: LlamaServer) -> LLMSettings:
    """Settings pointing the openai backend at the running server (restarted if a test stopped it)."""
    if llm_server.proc is None:
        llm_server.start()
    return LLMSettings(
        backend="openai",
        base_url=llm_server.base_url,
        model=MODEL_ALIAS,
        context_window=2048,
        timeout=60.0,
        max_retries=1,
    )
