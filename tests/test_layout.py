"""layout.py: the data dir's parts, named once, and the last ingest's report written whole."""

from __future__ import annotations

from pathlib import Path

from ragline.config import load_settings
from ragline.layout import DataLayout


def test_the_parts_of_a_data_dir(tmp_path: Path) -> None:
    layout = DataLayout(tmp_path)
    assert (layout.index, layout.crawl, layout.snapshots) == (
        tmp_path / "index",
        tmp_path / "crawl",
        tmp_path / "snapshots",
    )
    assert load_settings(data_dir=tmp_path).index_dir == layout.index


def test_the_last_ingest_report_round_trips_and_a_broken_one_reads_as_none(tmp_path: Path) -> None:
    layout = DataLayout(tmp_path / "new")
    assert layout.read_last_ingest() is None
    layout.write_last_ingest({"added": 3, "skipped": []})
    assert layout.read_last_ingest() == {"added": 3, "skipped": []}
    assert not list(layout.root.glob("*.tmp"))
    layout.last_ingest.write_text("{not json")
    assert layout.read_last_ingest() is None
