"""The web page: static files only (no CDN), served by the API at ``/``."""

from __future__ import annotations

import html
from pathlib import Path

STATIC_DIR = Path(__file__).parent / "static"
INDEX_HTML = STATIC_DIR / "index.html"
_BASE_META = '<meta name="ragline-citation-base" content="">'


def page_html(citation_base_url: str | None) -> str:
    """The page, telling its script where relative citation sources point (nowhere when None)."""
    page = INDEX_HTML.read_text(encoding="utf-8")
    if _BASE_META not in page:
        raise RuntimeError(f"{INDEX_HTML} lost its {_BASE_META}")
    filled = f'<meta name="ragline-citation-base" content="{html.escape(citation_base_url or "", quote=True)}">'
    return page.replace(_BASE_META, filled)
