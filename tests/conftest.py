"""Fixtures shared by every test: the shared corpora and loopback-only Ray/HTTP habits."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Models load from installed packages only; never reach for a hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# Keep Ray (when a test starts it) on loopback, without token auth files.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
CORPORA = SHARED / "corpora"


@pytest.fixture(scope="session")
def corpora() -> Path:
    """The shared test corpora (../shared/corpora); skips when absent."""
    if not CORPORA.is_dir():
        pytest.skip(f"shared corpora not found at {CORPORA} (they live beside the checkout)")
    return CORPORA
