"""ragline serve: the HTTP API on Ray Serve (default) or in one uvicorn process (development)."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from typing import Annotated

import typer

from ragline.cli.app import DataDir, app, out, settings, state
from ragline.config import Settings
from ragline.errors import ConfigError, EmptyIndexError, MissingDependencyError

ENGINES = ("ray", "uvicorn")
# Seconds the supervisor gives a stopping server beyond serve.graceful_shutdown_timeout before killing it.
SHUTDOWN_MARGIN = 15.0


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on (default 127.0.0.1, or serve.host)")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (default 8000, or serve.port)")] = None,
    engine: Annotated[
        str | None, typer.Option(help="ray: Ray Serve deployments (default); uvicorn: one process, for development")
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Serve the index over HTTP: /query, /search, /v1/chat/completions (OpenAI), /healthz, /readyz, /metrics."""
    s = settings(data_dir)
    if host is not None:
        s.serve.host = host
    if port is not None:
        s.serve.port = port
    if engine is not None:
        if engine not in ENGINES:
            raise ConfigError(f"--engine must be one of {', '.join(ENGINES)}, not {engine!r}")
        s.serve.engine = engine  # type: ignore[assignment]
    _check_index(s)
    _check_serve_extra()
    _server_logs(s)
    url = f"http://{s.serve.host}:{s.serve.port}"
    if s.serve.engine == "uvicorn":
        _run_uvicorn(s, url)
    else:
        _run_ray(s, url)


def _check_serve_extra() -> None:
    """The API's packages, or the extra that installs them."""
    import importlib.util

    for module, package in (("fastapi", "fastapi"), ("starlette", "starlette"), ("uvicorn", "uvicorn")):
        if importlib.util.find_spec(module) is None:
            raise MissingDependencyError(package, "serve")


def _check_index(s: Settings) -> None:
    """Fail before starting anything when there is nothing to serve (reads index.json only: no lock taken)."""
    from ragline.components import Components

    comp = Components(s)
    if comp.store.info() is None:
        raise EmptyIndexError(f"no index in {s.data_dir.resolve()}: run `ragline ingest PATH` first")


def _run_uvicorn(s: Settings, url: str) -> None:
    import uvicorn

    from ragline.api.app import create_app
    from ragline.api.backend import InProcessBackend
    from ragline.components import Components
    from ragline.observability.tracing import configure_tracing

    configure_tracing(s.observability)
    api = create_app(InProcessBackend(Components(s)), s.serve, citation_base_url=s.answer.citation_base_url)
    out.print(f"serving on {url} (uvicorn, one process); API docs at {url}/docs")
    uvicorn.run(
        api,
        host=s.serve.host,
        port=s.serve.port,
        log_config=None,  # keep our JSON logging
        access_log=False,  # the app logs each request itself
        timeout_graceful_shutdown=int(s.serve.graceful_shutdown_timeout),
    )


def _run_ray(s: Settings, url: str) -> None:
    """Serve on Ray from a supervised child process (ragline.ops.supervise): Ctrl-C and SIGTERM here stop
    the server gracefully, and then whatever it started (Ray, Serve's actors, HAProxy)."""
    from ragline.ops import supervise

    if not supervise.is_supervised():
        verbosity = ["-v"] * int(state.get("verbose") or 0) + (["-q"] if state.get("quiet") else [])
        argv = [sys.executable, "-m", "ragline.cli", *verbosity, "serve", "--engine", "ray"]
        argv += ["--host", s.serve.host, "--port", str(s.serve.port), "--data-dir", str(s.data_dir)]
        code = supervise.supervise(argv, grace=s.serve.graceful_shutdown_timeout + SHUTDOWN_MARGIN)
        if code:
            raise typer.Exit(code)
        return
    supervise.die_with_parent()
    _serve_on_ray(s, url)


class _Stopping(Exception):
    """A stop signal while the server was still starting."""


def _serve_on_ray(s: Settings, url: str) -> None:
    from ragline.ray_local import stop_local_ray
    from ragline.serving import app as ray_serve

    stop = threading.Event()
    starting = True
    ready = False

    def on_signal(*_: object) -> None:
        stop.set()
        if starting:  # interrupt the start (Ray's, or Serve waiting for every replica); finally stops it all
            raise _Stopping

    def listen() -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, on_signal)

    try:
        listen()  # from the first moment: a stop while Ray starts interrupts the start
        try:
            ray_serve.start(s, log_to_driver=bool(state.get("verbose")))
        except KeyboardInterrupt:
            raise _Stopping from None
        except SystemExit as e:  # ray.init's own SIGTERM handler, in place until listen() below, exits so
            if e.code != signal.SIGTERM:
                raise
            raise _Stopping from None
        # Again after ray.init, which installs its own SIGTERM handler (one that aborts the process when Ray
        # is being stopped): ours stops Serve gracefully instead.
        listen()
        if stop.is_set():  # asked while Ray's handler held the signal
            raise _Stopping
        ray_serve.deploy(s)
        starting, ready = False, True
        out.print(f"serving on {url} (Ray Serve); API docs at {url}/docs; Ctrl-C to stop")
        while not stop.wait(1):
            pass
        out.print("stopping: finishing the requests in flight")
    except _Stopping:
        starting = False
        out.print("stopping before the server was ready")
    finally:
        starting = False
        # A server that never served has no requests to drain: Ray's shutdown stops its actors at once
        # (Serve's graceful shutdown would wait for replicas that are still starting).
        if ready:
            ray_serve.shutdown()
        stop_local_ray()
    out.print("stopped")


def _server_logs(s: Settings) -> None:
    """A server logs one line per record (JSON by default) with request ids; request lines come at INFO."""
    from ragline.observability.logging import configure_logging

    quiet, verbose = state.get("quiet"), state.get("verbose")
    level = logging.ERROR if quiet else (logging.DEBUG if verbose else logging.INFO)
    configure_logging(s.observability.log_format, logging.WARNING, ragline_level=level)
