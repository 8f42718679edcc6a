"""docs/python.md runs as written: its ```python blocks, in order, over the project's own docs/ folder."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "python.md"
# A block right after this comment is shown, not run; the comment says why.
NOT_RUN = re.compile(r"<!-- not run: (?P<why>[^>]+?) -->\s*\n```python\n", re.S)
BLOCK = re.compile(r"^```python\n(.*?)^```$", re.S | re.M)


def python_blocks(markdown: str) -> tuple[list[str], list[str]]:
    """(the ```python blocks to run, in order; the reasons given for those not run)."""
    skipped = {m.end() for m in NOT_RUN.finditer(markdown)}
    run = [m.group(1) for m in BLOCK.finditer(markdown) if m.start(1) not in skipped]
    return run, [m.group("why") for m in NOT_RUN.finditer(markdown)]


def test_blocks_are_found_and_exclusions_say_why() -> None:
    page = "a\n```python\nx = 1\n```\n<!-- not run: needs a server -->\n```python\nserver()\n```\n```py\nshown\n```\n"
    assert python_blocks(page) == (["x = 1\n"], ["needs a server"])
    run, skipped = python_blocks(GUIDE.read_text(encoding="utf-8"))
    assert len(run) >= 6, "docs/python.md lost its examples"
    assert len(skipped) <= 1, f"keep the blocks that are not run few: {skipped}"


@pytest.fixture()
def checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A working dir as the page assumes (a checkout's root): the real docs/, and a fresh data dir."""
    (tmp_path / "docs").symlink_to(ROOT / "docs", target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    for name in ("RAGLINE_DATA_DIR", "RAGLINE_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    yield tmp_path


@pytest.mark.slow
def test_the_guide_runs_as_written(checkout: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run, _ = python_blocks(GUIDE.read_text(encoding="utf-8"))
    namespace: dict[str, object] = {"__name__": "__guide__"}
    for i, code in enumerate(run, 1):
        try:
            exec(compile(code, f"docs/python.md block {i}", "exec"), namespace)
        except Exception as e:  # name the block that failed
            raise AssertionError(f"docs/python.md block {i} failed: {e!r}\n{code}") from e
    printed = capsys.readouterr().out
    assert "docs/operations.md#snapshots" in printed
    assert (checkout / ".ragline" / "last-ingest.json").is_file()  # ragline status sees the ingest
