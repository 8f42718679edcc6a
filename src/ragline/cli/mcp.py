"""ragline mcp: search and ask as MCP tools, over stdio (an MCP client starts it) or streamable HTTP."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated

import typer

from ragline.cli.app import DataDir, app, err, settings, state
from ragline.errors import BadRequestError, ConfigError, EmptyIndexError, MissingDependencyError, RaglineError

if TYPE_CHECKING:
    from ragline.config import Settings

TRANSPORTS = ("stdio", "http")


@app.command()
def mcp(
    transport: Annotated[str, typer.Option(help="stdio (for a client that starts the server) or http")] = "stdio",
    host: Annotated[str, typer.Option(help="http: the address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="http: the port to listen on")] = 8001,
    tenant: Annotated[
        str | None, typer.Option(help="stdio: search only this tenant's chunks (default: every chunk)")
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(
            envvar="RAGLINE_MCP_API_KEY",
            help="stdio: search as this key of serve.api_keys (its tenant); http takes keys per request",
        ),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Serve the index to MCP clients: the tools search (chunks and their sources) and ask (a cited answer).

    Over http the endpoint is http://HOST:PORT/mcp. With serve.api_keys configured, each request needs
    Authorization: Bearer <key> and sees only its key's tenant, as with ragline serve. Ctrl-C or SIGTERM stops it.
    """
    import importlib.util

    if transport not in TRANSPORTS:
        raise ConfigError(f"--transport must be stdio or http, not {transport!r}")
    if importlib.util.find_spec("mcp") is None:
        raise MissingDependencyError("mcp", "mcp")
    s = settings(data_dir)
    if transport == "http" and (tenant or api_key):
        raise BadRequestError("--tenant and --api-key are for stdio: over http the key of each request decides")
    if api_key:
        from ragline.api.auth import tenant_for_key

        if not s.serve.api_keys:
            raise ConfigError("--api-key given, but no serve.api_keys are configured")
        tenant = tenant_for_key(s.serve, api_key)
    _check_index(s)
    _logs()

    import anyio

    from ragline.mcp.server import serve_http, serve_stdio

    try:
        if transport == "stdio":
            anyio.run(lambda: serve_stdio(s, tenant=tenant, ready=_ready))
        else:
            anyio.run(lambda: serve_http(s, host=host, port=port, ready=_ready))
    except BaseExceptionGroup as group:
        # The servers start inside a task group, which wraps what fails there (an index another process holds,
        # a port in use): one ragline error leaves as itself, so it is one line and its exit code.
        leaves = list(_leaves(group))
        if len(leaves) == 1 and isinstance(leaves[0], RaglineError):
            raise leaves[0] from None
        raise
    err.print("stopped")


def _leaves(group: BaseExceptionGroup) -> Iterator[BaseException]:
    for e in group.exceptions:
        if isinstance(e, BaseExceptionGroup):
            yield from _leaves(e)
        else:
            yield e


def _ready(url: str) -> None:
    # stderr: over stdio, stdout is the protocol's; over http it says where to point a client.
    where = "stdin/stdout" if url == "stdio" else f"{url} (streamable HTTP)"
    err.print(f"MCP server on {where}; Ctrl-C to stop")


def _check_index(s: Settings) -> None:
    """Fail before serving when there is nothing to serve (reads the index's record only)."""
    from ragline.components import Components

    if Components(s).store.info() is None:
        raise EmptyIndexError(f"no index in {s.data_dir.resolve()}: run `ragline ingest PATH` first")


def _logs() -> None:
    """Logs on stderr only (stdout may be the protocol): warnings, and the server's start and stop with -v."""
    from ragline.observability.logging import configure_logging

    quiet, verbose = state.get("quiet"), state.get("verbose")
    level = logging.ERROR if quiet else (logging.WARNING, logging.INFO, logging.DEBUG)[min(int(verbose or 0), 2)]
    configure_logging("text", level)
