"""DELETE /admin/sources: remove every chunk under a source prefix from the served index (admin keys only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from ragline.api.auth import Admin
from ragline.api.routes import Service
from ragline.api.schemas import ERROR_RESPONSES, ErrorOut
from ragline.ops.delete import Scope

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Admin])


@router.delete(
    "/sources",
    responses={
        **ERROR_RESPONSES,
        403: {"model": ErrorOut, "description": "The API key has no admin rights, or no admin key is configured"},
        501: {"model": ErrorOut, "description": "The serving engine cannot delete from this index"},
    },
    summary="Delete every chunk of the documents whose source starts with a prefix",
)
async def delete_sources(
    service: Service,
    prefix: Annotated[
        str, Query(min_length=1, max_length=2000, description="A URL path or folder, e.g. https://docs.x/old/")
    ],
    tenant: Annotated[
        str | None, Query(min_length=1, max_length=500, description="Delete only this tenant's documents")
    ] = None,
    all_tenants: Annotated[
        bool, Query(description="Delete every tenant's documents under the prefix (else name one, if any)")
    ] = False,
) -> dict[str, object]:
    report = await service.backend.delete_sources(prefix, Scope(tenant, all_tenants))
    return report.to_json()
