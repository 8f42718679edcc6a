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
from ragline.api.errors import (
    TYPE_ERRORS,
    Shown,
    UnauthorizedError,
    is_openai_path,
    is_type_tag,
    retry_headers,
    shown,
    validation_message,
)
from ragline.api.limits import BodyLimitMiddleware
from ragline.api.metrics import Metrics, MetricsMiddleware
from ragline.api.routes import admin, chat, health, openai_models, query, sources, web
from ragline.api.service import AnswerService
from ragline.api.settings import ServeSettings
from ragline.errors import RaglineError
from ragline.web import page_html

log = logging.getLogger(__name__)

DESCRIPTION = """Cited answers from your documentation.

* `POST /query` answers with citations (`stream: true` for Server-Sent Events); `POST /search` retrieves only.
* `POST /v1/chat/completions`, `POST /v1/embeddings` and `GET /v1/models` speak the OpenAI API: use any OpenAI
  client with `base_url=http://HOST:PORT/v1`.
* When API keys are configured, send `Authorization: Bearer <key>`; each key sees its tenant's documents only.
* `DELETE /admin/sources?prefix=...` removes every chunk under a source prefix (keys in serve.admin_api_keys).
* Errors have the shape `{"error": {"message", "type", "code"}}`; on the `/v1/` routes OpenAI's,
  `{"error": {"message", "type", "param", "code"}}`, with 400 for an invalid request.
"""


def create_app(backend: QueryBackend, settings: ServeSettings, *, citation_base_url: str | None = None) -> FastAPI:
    """The HTTP app over ``backend``; the backend starts with the app and closes with it.

    ``citation_base_url`` (``answer.citation_base_url``) is where the web page points relative citation sources.
    """
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
    app.state.page_html = page_html(citation_base_url)
    app.state.metrics = metrics
    app.state.service = AnswerService(backend, settings, metrics)
    for router in (
        query.router,
        sources.router,
        chat.router,
        openai_models.router,
        health.router,
        admin.router,
        web.router,
    ):
        app.include_router(router)
    app.mount("/static", web.static, name="static")
    _add_error_handlers(app, metrics)

    # Added innermost first: metrics see everything, including 413s and CORS preflights.
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        by_path={"/v1/embeddings": max(settings.max_body_bytes, settings.max_embedding_body_bytes)},
    )
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


def _error(metrics: Metrics, request: Request, shown: Shown, headers: dict[str, str] | None = None) -> JSONResponse:
    """The error response, in OpenAI's shape (and status) on the /v1/ routes, in ragline's on the others."""
    metrics.errors.labels(shown.kind).inc()
    openai = is_openai_path(request.url.path)
    body = shown.body(openai=openai)
    return JSONResponse(body, status_code=shown.status_for(openai=openai), headers=headers)


def _add_error_handlers(app: FastAPI, metrics: Metrics) -> None:
    async def ragline_error(request: Request, exc: Exception) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, UnauthorizedError) else retry_headers(exc)
        return _error(metrics, request, shown(exc), headers)

    async def validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return _error(metrics, request, Shown(400, "invalid_request", "the body is not valid JSON"))
        param, code = validation_param(errors)
        return _error(metrics, request, Shown(422, "invalid_request", validation_message(errors), param, code))

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        kind = "not_found" if exc.status_code == 404 else "invalid_request"
        headers = dict(exc.headers or {}) or None
        return _error(metrics, request, Shown(exc.status_code, kind, str(exc.detail)), headers)

    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        return _error(metrics, request, shown(exc))  # logs the traceback; the client sees "internal error"

    app.add_exception_handler(RaglineError, ragline_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)


# Pydantic's error types, as OpenAI's codes name them.
_CODES = {"missing": "missing_required_parameter", "extra_forbidden": "unknown_parameter"}


def validation_param(errors: Any) -> tuple[str | None, str]:
    """(the offending field as OpenAI names it, e.g. ``messages[0].content``; OpenAI's code) of the first error."""
    if not errors:
        return None, "invalid_value"
    first = errors[0]
    kind = str(first.get("type", ""))
    code = _CODES.get(kind) or ("invalid_type" if kind.endswith(TYPE_ERRORS) else "invalid_value")
    param = ""
    for part in first.get("loc", ())[1:]:  # loc starts with "body" or "query"
        if isinstance(part, int):
            param += f"[{part}]"
        elif is_type_tag(part):  # a union member's tag ("str", "list[ContentPart]"), not a field
            break
        else:
            param += f".{part}" if param else str(part)
    return param or None, code
