"""The web page: ``/`` and its static files, all served locally (no CDN)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from ragline.web import INDEX_HTML, STATIC_DIR

router = APIRouter(include_in_schema=False)


@router.get("/")
async def index() -> FileResponse:
    return FileResponse(INDEX_HTML, media_type="text/html", headers={"Cache-Control": "no-cache"})


static = StaticFiles(directory=STATIC_DIR)
