"""The web page: ``/`` and its static files, all served locally (no CDN)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from ragline.web import STATIC_DIR

router = APIRouter(include_in_schema=False)

# The page loads only its own script and style and talks only to this server; no page may frame it.
PAGE_HEADERS = {
    "Cache-Control": "no-cache",
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


@router.get("/")
async def index(request: Request) -> HTMLResponse:
    return HTMLResponse(request.app.state.page_html, headers=PAGE_HEADERS)


static = StaticFiles(directory=STATIC_DIR)
