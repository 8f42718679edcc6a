"""GET /sources: the documents a key may search, by source and title (the web page's source filter)."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from ragline.api.auth import Tenant
from ragline.api.errors import RequestTimeoutError
from ragline.api.routes import Service
from ragline.api.schemas import ERROR_RESPONSES
from ragline.ops.sources import MAX_SOURCES

router = APIRouter(tags=["query"])

DEFAULT_LIMIT = 1000


class SourceOut(BaseModel):
    source: str = Field(description="The document's URL or path: a `source` filter of /query and /search")
    title: str


class SourcesOut(BaseModel):
    sources: list[SourceOut] = Field(description="Sorted by source, at most `limit`")
    total: int = Field(description="How many documents the key may search, listed or not")
    truncated: bool = Field(description="Whether documents were left out to stay within `limit`")


@router.get(
    "/sources",
    response_model=SourcesOut,
    responses=ERROR_RESPONSES,
    summary="List the documents this API key may search",
)
async def sources(
    service: Service,
    tenant: Tenant,
    limit: Annotated[int, Query(ge=1, le=MAX_SOURCES, description="The most sources to list")] = DEFAULT_LIMIT,
) -> JSONResponse:
    timeout = service.settings.request_timeout
    try:
        async with asyncio.timeout(timeout):
            listed = await service.backend.sources(tenant, limit)
    except TimeoutError:
        raise RequestTimeoutError(f"listing the sources took longer than {timeout:g} s") from None
    return JSONResponse(listed.to_json())
