"""While an in-process ingest runs, the interpreter hands the GIL over every millisecond, and afterwards the
process's own switch interval is back, also after an error and with ingests running side by side."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest

from ragline.ingest import local
from ragline.ingest.local import quick_gil_handoff

from .conftest import components


@pytest.fixture
def interval() -> float:
    saved = sys.getswitchinterval()
    sys.setswitchinterval(0.004)
    yield 0.004
    sys.setswitchinterval(saved)


def test_lowered_inside_put_back_after_an_error(interval: float) -> None:
    with pytest.raises(RuntimeError), quick_gil_handoff():
        assert sys.getswitchinterval() == pytest.approx(0.001)
        raise RuntimeError("boom")
    assert sys.getswitchinterval() == pytest.approx(interval)
    with quick_gil_handoff(active=False):
        assert sys.getswitchinterval() == pytest.approx(interval)


def test_put_back_only_when_the_last_of_two_overlapping_ingests_ends(interval: float) -> None:
    inside, leave = threading.Event(), threading.Event()

    def other() -> None:
        with quick_gil_handoff():
            inside.set()
            leave.wait(10)

    thread = threading.Thread(target=other)
    thread.start()
    assert inside.wait(10)
    with quick_gil_handoff():
        pass
    assert sys.getswitchinterval() == pytest.approx(0.001)  # the other one is still running
    leave.set()
    thread.join(10)
    assert sys.getswitchinterval() == pytest.approx(interval)


@pytest.mark.slow
def test_a_real_ingest_runs_with_the_quick_handoff(site: Path, tmp_path: Path, interval: float) -> None:
    seen: list[float] = []
    report = local.ingest(
        [site / "how_to"], components(tmp_path / "data"), progress=lambda _e, _n: seen.append(sys.getswitchinterval())
    )
    assert report.chunks_written > 10 and seen
    assert seen == [pytest.approx(0.001)] * len(seen)
    assert sys.getswitchinterval() == pytest.approx(interval)
