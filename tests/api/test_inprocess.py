"""The serving contract on the in-process engine (``--engine uvicorn``): real uvicorn, embedded llama.cpp."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .contract import ServingContract
from .helpers import app_settings, serve_in_process

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def base_url(index_dir: Path) -> Iterator[str]:
    with serve_in_process(app_settings(index_dir)) as url:
        yield url


class TestInProcess(ServingContract):
    pass
