"""`ragline mcp` through the MCP SDK's own client: stdio (spawned as an MCP client does), streamable HTTP with
the HTTP API's keys and tenants, answers from a real llama.cpp server, and a clean stop on SIGTERM.

No __init__.py in this folder: as a package it would be named ``mcp`` and hide the SDK.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

pytest.importorskip("mcp")

from llm_server import LlamaServer
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

import ragline
from ragline.ray_local import free_port

pytestmark = pytest.mark.slow

KEYS = {"key-acme-0123456789": "acme", "key-globex-0123456789": "globex"}
SITE = {"acme": "https://docs.acme.example", "globex": "https://docs.globex.example"}
PAGES = {
    "acme": (
        "flux.md",
        "# Flux widget manual\n\n## Calibrating the flux widget\n\n"
        "To calibrate the flux widget, turn the blue lever three times clockwise and wait for the green light.\n",
    ),
    "globex": (
        "reactor.md",
        "# Globex reactor handbook\n\n## Cooling the reactor\n\n"
        "The Globex reactor is cooled by pumping lemon-flavoured brine through the copper coils.\n",
    ),
}
FLUX = "https://docs.acme.example/flux.html#calibrating-the-flux-widget"
REACTOR = "https://docs.globex.example/reactor.html#cooling-the-reactor"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("mcp")
    with ragline.open(root / "data") as rag:
        for tenant, (name, text) in PAGES.items():
            (root / tenant).mkdir()
            (root / tenant / name).write_text(text, encoding="utf-8")
            rag.ingest(root / tenant, tenant=tenant, url_template=SITE[tenant] + "/{path_noext}.html")
    return root / "data"


def server_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGLINE_")}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", RAGLINE_SERVE__API_KEYS=json.dumps(KEYS), **extra)
    return env


def stdio(data_dir: Path, *args: str, **env: str) -> Client:
    argv = ["-m", "ragline.cli", "mcp", "--data-dir", str(data_dir), *args]
    return Client(StdioServerParameters(command=sys.executable, args=argv, env=server_env(**env)))


def sources(result: Any) -> list[str]:
    assert not result.is_error, result.content
    return [h["source"] for h in result.structured_content["hits"]]


def test_stdio_lists_tools_and_searches(data_dir: Path) -> None:
    async def run() -> None:
        async with stdio(data_dir) as client:
            tools = {t.name: t for t in (await client.list_tools()).tools}
            assert set(tools) == {"search", "ask"}
            assert tools["search"].output_schema and "hits" in tools["search"].output_schema["properties"]
            found = await client.call_tool("search", {"query": "How do I calibrate the flux widget?", "k": 2})
            assert sources(found)[0] == FLUX
            assert json.loads(found.content[0].text)["hits"][0]["source"] == FLUX  # the text copy, for old clients
            bad = await client.call_tool("search", {"query": "flux", "k": 0})
            assert bad.is_error and "greater than or equal to 1" in bad.content[0].text
            long = await client.call_tool("search", {"query": "x" * 2001})
            assert long.is_error and "the limit is 2000" in long.content[0].text  # serve.max_query_chars

    anyio.run(run)


def test_stdio_argument_errors_are_one_line_as_the_http_api_words_them(data_dir: Path) -> None:
    calls = [
        ("search", {}, "query: Field required"),
        ("search", {"query": "flux", "k": 0}, "k: Input should be greater than or equal to 1"),
        ("search", {"query": "flux", "k": "three"}, "k: Input should be a valid integer"),
        ("search", {"query": "flux", "filters": {"bad key!": "x"}}, "filters: 'bad key!' is not a filter key ("),
        ("ask", {"question": "flux", "mode": "poetic"}, "mode: Input should be 'auto', 'extractive' or 'generative'"),
    ]

    async def run() -> None:
        async with stdio(data_dir) as client:
            for tool, arguments, message in calls:
                result = await client.call_tool(tool, arguments)
                (content,) = result.content
                assert result.is_error and content.text.startswith(f"Error executing tool {tool}: {message}")
                assert "\n" not in content.text and "pydantic.dev" not in content.text and "^" not in content.text

    anyio.run(run)


def test_a_second_server_on_an_index_another_holds_reads_it_too(data_dir: Path) -> None:
    """The embedded engine lets one process load an index generation; a second reader (another MCP server, a
    search) reads a private copy of the published generation instead of being refused."""

    async def run() -> None:
        async with stdio(data_dir) as client:  # this server holds the index
            first = await client.call_tool("search", {"query": "flux widget", "k": 3})
            assert not first.is_error
            async with stdio(data_dir) as second:
                again = await second.call_tool("search", {"query": "flux widget", "k": 3})
                assert not again.is_error and sources(again) == sources(first)

    anyio.run(run)


def test_stdio_tenant_sees_only_its_chunks(data_dir: Path) -> None:
    async def run() -> None:
        async with stdio(data_dir, "--tenant", "acme") as client:
            found = await client.call_tool("search", {"query": "How is the reactor cooled?", "k": 5})
            assert found.structured_content["hits"] and all(s.startswith(SITE["acme"]) for s in sources(found))
        async with stdio(data_dir, "--api-key", "key-globex-0123456789") as client:
            found = await client.call_tool("search", {"query": "flux widget", "k": 5})
            assert all(s.startswith(SITE["globex"]) for s in sources(found))

    anyio.run(run)


# -- streamable HTTP -------------------------------------------------------------------------------


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"ragline mcp exited with {proc.returncode}"
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"nothing listens on {port} after {timeout:g} s")


@pytest.fixture()
def http_server(data_dir: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    argv = [sys.executable, "-m", "ragline.cli", "mcp", "--transport", "http", "--port", str(port)]
    proc = subprocess.Popen([*argv, "--data-dir", str(data_dir)], env=server_env())
    try:
        wait_for_port(port, proc)
        yield f"http://127.0.0.1:{port}/mcp", proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)


def keyed(url: str, key: str | None) -> Client:
    headers = {"Authorization": f"Bearer {key}"} if key else None
    return Client(streamable_http_client(url, http_client=create_mcp_http_client(headers=headers)))


def test_http_keys_tenants_and_sigterm(http_server: tuple[str, subprocess.Popen[bytes]]) -> None:
    url, proc = http_server
    hello = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    accept = {"Accept": "application/json, text/event-stream"}
    for headers in ({}, {"Authorization": "Bearer not-a-key"}):
        refused = httpx.post(url, json=hello, headers={**accept, **headers}, timeout=30)
        assert refused.status_code == 401 and refused.json()["error"]["type"] == "unauthorized"

    async def run() -> None:
        with pytest.raises(Exception):  # noqa: B017  # the SDK's error for a 401 varies; it must not connect
            async with keyed(url, None) as client:
                await client.list_tools()
        async with keyed(url, "key-acme-0123456789") as acme, keyed(url, "key-globex-0123456789") as globex:
            assert {t.name for t in (await acme.list_tools()).tools} == {"search", "ask"}
            # Each key sees its own tenant's page first, and never the other's, whatever it asks for.
            for question in ("How is the reactor cooled?", "How do I calibrate the flux widget?"):
                seen_by_acme = sources(await acme.call_tool("search", {"query": question, "k": 5}))
                seen_by_globex = sources(await globex.call_tool("search", {"query": question, "k": 5}))
                assert seen_by_acme == [FLUX] and seen_by_globex == [REACTOR]
            # A tenant filter cannot reach across: the key's tenant overrides it.
            crossed = await acme.call_tool("search", {"query": "reactor", "filters": {"tenant": "globex"}})
            assert sources(crossed) == [FLUX]
            answer = await acme.call_tool("ask", {"question": "How is the reactor cooled?", "mode": "extractive"})
            assert not answer.is_error
            assert {c["source"] for c in answer.structured_content["citations"]} <= {FLUX}

    anyio.run(run)
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0
    with socket.socket() as s:  # nothing listens any more
        assert s.connect_ex(("127.0.0.1", port)) != 0
    with socket.socket() as s:  # and a new server can listen there (closed connections may linger in TIME_WAIT)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        s.listen()


def test_stdio_stops_on_sigterm(data_dir: Path) -> None:
    argv = [sys.executable, "-m", "ragline.cli", "mcp", "--data-dir", str(data_dir)]
    proc = subprocess.Popen(
        argv, env=server_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        assert proc.stderr is not None
        first = proc.stderr.readline().decode()  # once the index and the model are loaded
        assert first.startswith("MCP server on stdin/stdout"), first
        proc.send_signal(signal.SIGTERM)  # with stdin still open: the client did not hang up
        assert proc.wait(timeout=30) == 0
        assert "stopped" in proc.stderr.read().decode()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()


# -- answers from a language model ---------------------------------------------------------------


def test_ask_with_a_real_llm_and_an_unreachable_one(data_dir: Path) -> None:
    short = {"RAGLINE_LLM__MAX_TOKENS": "40", "RAGLINE_LLM__CONTEXT_WINDOW": "2048", "RAGLINE_LLM__MAX_RETRIES": "0"}
    question = {"question": "How do I calibrate the flux widget?", "mode": "generative", "max_tokens": 30}

    async def run(base_url: str) -> None:
        llm = {"RAGLINE_LLM__BACKEND": "openai", "RAGLINE_LLM__BASE_URL": base_url, "RAGLINE_LLM__MODEL": "smollm2"}
        async with stdio(data_dir, **short, **llm) as client:
            result = await client.call_tool("ask", question)
            assert not result.is_error, result.content
            answer = result.structured_content
            assert answer["mode"] == "generative" and answer["llm"] != "none (extractive)"
            assert answer["answer"].strip() and answer["usage"]["completion_tokens"] > 0
            assert answer["citations"][0]["source"] == FLUX

    async def unreachable() -> None:
        dead = {"RAGLINE_LLM__BACKEND": "openai", "RAGLINE_LLM__BASE_URL": f"http://127.0.0.1:{free_port()}/v1"}
        async with stdio(data_dir, **short, **dead) as client:
            result = await client.call_tool("ask", question)
            assert result.is_error and "the language model is unavailable" in result.content[0].text
            # The server is still up: a search after the failure works.
            assert sources(await client.call_tool("search", {"query": "flux widget", "k": 1})) == [FLUX]

    with LlamaServer(n_ctx=2048, threads=2) as server:
        anyio.run(run, server.base_url)
    anyio.run(unreachable)
