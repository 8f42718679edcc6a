"""The FastAPI app factory: routes, error mapping, limits, CORS and metrics around a QueryBackend.

The app holds no query logic: ``--engine uvicorn`` gives it an InProcessBackend, the Ray Serve ingress a
RayServeBackend, and both serve exactly this app.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from ragline import __version__
from ragline.api.backend import QueryBackend
from ragline.api.errors import UnauthorizedError, describe, error_body, retry_headers
from ragline.api.limits import BodyLimitMiddleware
from ragline.api.metrics import Metrics, MetricsMiddleware
from ragline.api.routes import admin, chat, health, query, web
from ragline.api.service import AnswerService
from ragline.api.settings import ServeSettings
from ragline.errors import RaglineError

log = logging.getLogger(__name__)

DESCRIPTION = """Cited answers from your documentation.

* `POST /query` answers with citations (`stream: true` for Server-Sent Events); `POST /search` retrieves only.
* `POST /v1/chat/completions` and `GET /v1/models` speak the OpenAI API: use any OpenAI client with
  `base_url=http://HOST:PORT/v1`.
* When API keys are configured, send `Authorization: Bearer <key>`; each key sees its tenant's documents only.
* `DELETE /admin/sources?prefix=...` removes every chunk under a source prefix (keys in serve.admin_api_keys).
* Errors have the shape `{"error": {"message", "type", "code"}}`.
"""


def create_app(backend: QueryBackend, settings: ServeSettings) -> FastAPI:
    """The HTTP app over ``backend``; the backend starts with the app and closes with it."""
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await backend.start()
        log.info("serving with the %s backend", backend.name)
        try:
            yield
        finally:
            await backend.close()

    app = FastAPI(title="ragline", version=__version__, description=DESCRIPTION, lifespan=lifespan)
    app.state.serve_settings = settings
    app.state.metrics = metrics
    app.state.service = AnswerService(backend, settings, metrics)
    for router in (query.router, chat.router, health.router, admin.router, web.router):
        app.include_router(router)
    app.mount("/static", web.static, name="static")
    _add_error_handlers(app, metrics)

    # Added innermost first: metrics see everything, including 413s and CORS preflights.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type"],
        )
    # Ray Serve's proxy returns X-Request-ID itself; a second copy would repeat the header.
    app.add_middleware(MetricsMiddleware, metrics=metrics, echo_request_id=backend.name != "ray-serve")
    return app


def _error(
    metrics: Metrics, status: int, kind: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    metrics.errors.labels(kind).inc()
    return JSONResponse(error_body(status, kind, message), status_code=status, headers=headers)


def _add_error_handlers(app: FastAPI, metrics: Metrics) -> None:
    async def ragline_error(_: Request, exc: Exception) -> JSONResponse:
        status, kind, message = describe(exc)
        headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, UnauthorizedError) else retry_headers(exc)
        return _error(metrics, status, kind, message, headers)

    async def validation_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return _error(metrics, 400, "invalid_request", "the body is not valid JSON")
        return _error(metrics, 422, "invalid_request", validation_message(errors))

    async def http_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        kind = "not_found" if exc.status_code == 404 else "invalid_request"
        return _error(metrics, exc.status_code, kind, str(exc.detail), dict(exc.headers or {}) or None)

    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        status, kind, message = describe(exc)  # logs the traceback; the client sees "internal error"
        return _error(metrics, status, kind, message)

    app.add_exception_handler(RaglineError, ragline_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)


def validation_message(errors: Any, limit: int = 3) -> str:
    """'body.k: Input should be greater than or equal to 1; ...' without echoing the (maybe huge) input."""
    parts = []
    for e in list(errors)[:limit]:
        loc = ".".join(str(p) for p in e.get("loc", ()))
        parts.append(f"{loc}: {e.get('msg', 'invalid')}" if loc else str(e.get("msg", "invalid")))
    more = len(errors) - limit
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")
