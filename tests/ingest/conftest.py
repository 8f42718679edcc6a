"""A small real docs site for the ingest engines: LCEL how-to pages, plus the awkward inputs real folders hold."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from ragline.components import Components
from ragline.config import load_settings
from ragline.ingest.local import read_sources

HOW_TO = "docs/expression_language/how_to"
# A real page that crashes the HTML decoding step: a declared charset Python knows, but as a bytes-to-bytes codec.
CRASHING_PAGE = (
    '<html><head><meta charset="rot13"><title>Broken</title></head>'
    "<body><main><h1>Broken</h1><p>Never indexed.</p></main></body></html>"
)


@pytest.fixture(scope="module")
def site(corpora: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """LCEL how-to pages; a later copy of one page (same canonical URL, other text); a page that crashes
    the parser; an empty file."""
    root = tmp_path_factory.mktemp("site") / "site"
    shutil.copytree(corpora / "langchain-lcel" / "site" / HOW_TO, root / "how_to")
    copy = (root / "how_to" / "binding" / "index.html").read_text(encoding="utf-8")
    (root / "zz-mirror").mkdir()
    (root / "zz-mirror" / "binding.html").write_text(copy.replace("</article>", "<p>Mirrored.</p></article>", 1))
    (root / "broken.html").write_text(CRASHING_PAGE)
    (root / "empty.md").write_text("")
    return root


def components(data_dir: Path, **ingest: Any) -> Components:
    settings = load_settings(data_dir=data_dir)
    for key, value in ingest.items():
        setattr(settings.ingest, key, value)
    return Components(settings)


def expected_points(folder: Path, comp: Components) -> dict[str, str]:
    """point id -> doc_hash a complete ingest of ``folder`` must hold, by chunking alone (no embedding)."""
    _, loaded = read_sources([folder], comp)
    out: dict[str, str] = {}
    seen: set[str] = set()
    for item in loaded:
        if item.document is None or item.document.doc_id in seen:
            continue
        doc = item.document
        seen.add(doc.doc_id)
        origin = doc.metadata.pop("origin", None)
        for chunk in comp.chunker.split(doc, origin=origin):
            out[chunk.id] = chunk.doc_hash
    return out


def points(comp: Components) -> dict[str, dict[str, Any]]:
    return dict(comp.store.points())
