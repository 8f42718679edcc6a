"""GET /healthz (the process answers), GET /readyz (index open, LLM reachable), GET /metrics (Prometheus)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from ragline.api.backend import generation_of
from ragline.api.metrics import PROMETHEUS_CONTENT_TYPE, Metrics
from ragline.api.routes import Service
from ragline.api.schemas import Readiness

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="Liveness: the server answers")
async def healthz() -> dict[str, str]:
    return {"status": "alive"}


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "Not ready: the index or the LLM cannot serve"}},
    summary="Readiness: the index is open and the language model answers",
)
async def readyz(service: Service) -> Response:
    ready, checks = await service.readiness()
    generation = await generation_of(service.backend)
    body = {"status": "ready" if ready else "not ready", "checks": checks, "generation": generation}
    return JSONResponse(body, 200 if ready else 503)


@router.get(
    "/metrics",
    summary="Prometheus metrics of this server process",
    response_class=Response,
    responses={200: {"content": {PROMETHEUS_CONTENT_TYPE: {"schema": {"type": "string"}}}}},
)
async def metrics(request: Request) -> Response:
    registry: Metrics = request.app.state.metrics
    registry.set_generation(await generation_of(request.app.state.service.backend))
    return Response(registry.render(), media_type=PROMETHEUS_CONTENT_TYPE)
