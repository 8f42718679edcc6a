"""The MCP tools and their transports.

The tools go through the HTTP API's own ``AnswerService`` over the in-process backend, so an MCP call gets
what a ``/search`` or ``/query`` request gets: the same limits (``serve.max_k``, ``serve.max_query_chars``),
deadline (``serve.request_timeout``), answer slots per tenant, tenant scoping and error messages. Results are
structured: the objects ``ragline search --json`` and ``ragline ask --json`` print.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import anyio
import uvicorn
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from mcp.types import CallToolResult, InputRequiredResult, ToolAnnotations
from pydantic import Field, ValidationError

from ragline import __version__
from ragline.api.backend import InProcessBackend
from ragline.api.errors import describe, validation_message
from ragline.api.metrics import Metrics
from ragline.api.schemas import AnswerMode, AnswerOut, Filters, MaxTokens, SearchOut
from ragline.api.service import AnswerService
from ragline.components import Components
from ragline.config import Settings
from ragline.errors import ConfigError, RaglineError
from ragline.mcp.auth import TENANT_STATE, ApiKeys
from ragline.records import AnswerOptions, Query

log = logging.getLogger(__name__)

INSTRUCTIONS = (
    "Search and answer from an indexed documentation set. `search` returns the best matching chunks with "
    "their source URL#anchor; `ask` returns an answer that cites those chunks by number ([1], [2], ...)."
)

Question = Annotated[str, Field(min_length=1, description="The question, in natural language")]
K = Annotated[int | None, Field(ge=1, description="How many chunks to retrieve (default: the index's)")]


def tenant_of(ctx: Context, fixed: str | None) -> str | None:
    """The tenant a tool call is scoped to: over HTTP, the one of the key that carried the call (set by
    ``ApiKeys``); over stdio, the one the server was started for."""
    request = ctx.request_context.request
    if request is None:  # stdio: one local client, the process's own tenant
        return fixed
    state = getattr(request, "scope", {}).get("state") or {}
    if TENANT_STATE not in state:  # never serve a call that did not pass the key check
        raise ToolError("this request was not authenticated")
    tenant: str | None = state[TENANT_STATE]
    return tenant


class _Server(MCPServer):
    """An MCP server whose argument errors are one line, worded as the HTTP API words them (the SDK sends
    pydantic's multi-line report, with a link per error and a filter key's whole regex)."""

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None
    ) -> CallToolResult | InputRequiredResult:
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as e:
            cause = e.__cause__
            if isinstance(e, UnexpectedToolError) or not isinstance(cause, ValidationError):
                raise
            # The cause stays the ValidationError: the SDK logs the rejected fields from it.
            raise ToolError(f"Error executing tool {name}: {validation_message(cause.errors())}") from cause


def build_server(service: AnswerService, *, tenant: str | None = None) -> MCPServer:
    """An MCP server with the ``search`` and ``ask`` tools over ``service``; ``tenant`` scopes stdio calls."""
    server: MCPServer = _Server("ragline", version=__version__, instructions=INSTRUCTIONS)
    read_only = ToolAnnotations(read_only_hint=True, open_world_hint=False)

    @server.tool(annotations=read_only, structured_output=True)
    async def search(ctx: Context, query: Question, k: K = None, filters: Filters | None = None) -> SearchOut:
        """The chunks of the documentation that best match a question, best first, each with its source
        (URL#anchor), title, section, score and text. Filters: `source` (a URL or path prefix), `type`
        (html, markdown, rst, notebook) or any metadata field."""
        asked = Query(query, k, filters, tenant_of(ctx, tenant))
        try:
            hits = await service.search(asked)
        except RaglineError as e:
            raise ToolError(describe(e)[2]) from e
        return SearchOut.model_validate({"query": query, "hits": [h.to_json() for h in hits]})

    @server.tool(annotations=read_only, structured_output=True)
    async def ask(
        ctx: Context,
        question: Question,
        k: K = None,
        filters: Filters | None = None,
        mode: AnswerMode = None,
        max_tokens: MaxTokens = None,
    ) -> AnswerOut:
        """Answer a question from the documentation. The answer cites its sources by number; `citations`
        lists them ([n], source URL#anchor, title, section, text). `grounded` says whether the answer passed
        the check against its sources; `fallback` why a generated answer was replaced by an extractive one."""
        whole = AnswerOptions(mode, max_tokens, draft=False)  # one reply: nobody would see a draft
        asked = Query(question, k, filters, tenant_of(ctx, tenant), options=whole)
        try:
            answer = await service.answer(asked)
        except RaglineError as e:
            raise ToolError(describe(e)[2]) from e
        return AnswerOut.model_validate(answer.to_json())

    return server


class _Uvicorn(uvicorn.Server):
    """uvicorn without its own signal handlers: ragline's (``_until_signal``) stop it the same way."""

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def _until_signal() -> None:
    """Return on the first SIGTERM or SIGINT (Ctrl-C)."""
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for signum in signals:
            log.info("%s: stopping the MCP server", signal.Signals(signum).name)
            return


async def serve_stdio(
    settings: Settings, *, tenant: str | None = None, ready: Callable[[str], None] | None = None
) -> None:
    """Serve one client on stdin/stdout until it closes stdin, or a signal stops the process."""
    backend = InProcessBackend(Components(settings))
    serving = False
    try:
        async with anyio.create_task_group() as tg:

            async def on_signal() -> None:
                await _until_signal()
                if not serving:  # still starting: the cancel waits for the start, then the finally closes
                    tg.cancel_scope.cancel()
                    return
                # The SDK reads stdin in a worker thread that no cancellation interrupts, so the process would
                # wait for the client's next line: release the index, then leave at once.
                await backend.close()
                sys.stderr.write("stopped\n")
                sys.stderr.flush()
                os._exit(0)

            tg.start_soon(on_signal)
            await backend.start()
            server = build_server(AnswerService(backend, settings.serve, Metrics()), tenant=tenant)
            serving = True
            if ready is not None:
                ready("stdio")
            await server.run_stdio_async()  # returns when the client closes stdin
            tg.cancel_scope.cancel()
    finally:
        await backend.close()


async def serve_http(settings: Settings, *, host: str, port: int, ready: Callable[[str], None] | None = None) -> None:
    """Serve MCP over streamable HTTP at ``http://host:port/mcp`` with the HTTP API's keys and tenants, until
    a signal stops it (gracefully: calls in flight finish). ``ready`` gets the URL once the port listens."""
    backend = InProcessBackend(Components(settings))
    server: _Uvicorn | None = None
    try:
        async with anyio.create_task_group() as tg:

            async def on_signal() -> None:
                await _until_signal()
                if server is None:  # still starting
                    tg.cancel_scope.cancel()
                else:
                    server.should_exit = True  # a graceful shutdown: calls in flight finish

            tg.start_soon(on_signal)
            await backend.start()
            service = AnswerService(backend, settings.serve, Metrics())
            app = ApiKeys(build_server(service).streamable_http_app(host=host), settings.serve)
            config = uvicorn.Config(
                app,
                host=host,
                port=port,
                log_config=None,  # keep ragline's logging
                access_log=False,
                lifespan="on",  # the session manager starts and stops with the server
                timeout_graceful_shutdown=int(settings.serve.graceful_shutdown_timeout),
            )
            server = _Uvicorn(config)
            if ready is not None:
                tg.start_soon(_when_started, server, f"http://{host}:{port}/mcp", ready)
            try:
                await server.serve()
            except SystemExit:  # uvicorn exits when it cannot start, e.g. on a port in use (it logged why)
                raise ConfigError(f"cannot serve on {host}:{port} (is the port in use?)") from None
            tg.cancel_scope.cancel()
    finally:
        await backend.close()


async def _when_started(server: uvicorn.Server, url: str, ready: Callable[[str], None]) -> None:
    while not server.started:
        await anyio.sleep(0.05)
    ready(url)
