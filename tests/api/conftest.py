"""Fixtures for the API tests: a small real index of two tenants, built once per session.

The index uses the bundled MiniLM and the embedded Qdrant engine: tenant ``acme`` owns a widget manual,
tenant ``globex`` a reactor handbook and a secret project page (see helpers.DOCS).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from llm_server import LlamaServer

from ragline.components import Components
from ragline.config import load_settings
from ragline.ingest.local import ingest

from .helpers import DOCS, SITE


@pytest.fixture(scope="session")
def index_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir holding both tenants' documents, each stamped with its tenant at ingest."""
    root = tmp_path_factory.mktemp("api")
    data_dir = root / "data"
    comp = Components(load_settings(data_dir=data_dir))
    try:
        for tenant, files in DOCS.items():
            folder = root / tenant
            folder.mkdir()
            for name, text in files.items():
                (folder / name).write_text(text, encoding="utf-8")
            comp.settings.parse.url_template = SITE[tenant] + "/{path_noext}.html"
            report = ingest([folder], comp, metadata={"tenant": tenant})
            assert report.documents == len(files) and not report.skipped
    finally:
        comp.close()
    return data_dir


@pytest.fixture()
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=120) as c:
        yield c


@pytest.fixture(scope="module")
def llm() -> Iterator[LlamaServer]:
    """A llama.cpp OpenAI-compatible server on 127.0.0.1 for one test module (a module may stop it)."""
    with LlamaServer(n_ctx=2048, threads=2) as server:
        yield server
