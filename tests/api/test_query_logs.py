"""Questions stay out of the logs unless ``serve.log_queries`` says otherwise (real index, real llama.cpp)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from ragline.api.app import create_app
from ragline.api.backend import InProcessBackend
from ragline.components import Components
from ragline.privacy import query_ref

from .helpers import app_settings, auth

pytestmark = pytest.mark.slow

QUESTION = "How do I calibrate the flux widget? my badge is ZX-4471-secret"


def _logged(caplog: pytest.LogCaptureFixture, index_dir: Path, **serve: object) -> str:
    # A slow answer (a busy machine) falls back to the citations: the logs are what this test is about.
    settings = app_settings(index_dir, request_timeout=60, retrieval_only_fallback=True, **serve)
    caplog.set_level(logging.DEBUG)  # everything, from every logger
    with TestClient(create_app(InProcessBackend(Components(settings)), settings.serve)) as client:
        r = client.post("/search", json={"query": QUESTION, "k": 2}, headers=auth())
        assert r.status_code == 200 and r.json()["hits"]
        r = client.post("/query", json={"query": QUESTION, "k": 2}, headers=auth())
        assert r.status_code == 200 and r.json()["answer"]
    return "\n".join(rec.getMessage() for rec in caplog.records)


def test_questions_are_logged_as_a_hash_by_default(caplog: pytest.LogCaptureFixture, index_dir: Path) -> None:
    logs = _logged(caplog, index_dir)
    assert "ZX-4471" not in logs and "calibrate the flux" not in logs
    assert logs.count(query_ref(QUESTION)) == 2  # one line per request, matchable across requests


def test_questions_are_logged_verbatim_when_configured(caplog: pytest.LogCaptureFixture, index_dir: Path) -> None:
    logs = _logged(caplog, index_dir, log_queries=True)
    assert logs.count("ZX-4471") == 2
