"""Forgetting sources outside the index: what the data dir keeps about them besides their chunks."""

from __future__ import annotations

from pathlib import Path

from ragline.layout import DataLayout
from ragline.sources.pagestore import remove_pages


def forget_cached(data_dir: Path, prefix: str) -> int:
    """Remove what ``data_dir`` keeps about sources starting with ``prefix`` outside the index: crawled
    pages and their mentions in the last ingest's report. Returns the items removed.

    The index itself is not touched. ragline writes no log files (logs go to stderr), so there are none
    to scrub here.
    """
    if not prefix:
        raise ValueError("an empty prefix would forget every source")
    layout = DataLayout(Path(data_dir))
    removed = remove_pages(layout.crawl, prefix) if layout.crawl.is_dir() else 0
    return removed + _scrub_report(layout, prefix)


def _scrub_report(layout: DataLayout, prefix: str) -> int:
    report = layout.read_last_ingest()
    skipped = report.get("skipped") if report else None
    if report is None or not isinstance(skipped, list):
        return 0
    kept = [s for s in skipped if not (isinstance(s, dict) and str(s.get("source", "")).startswith(prefix))]
    if len(kept) == len(skipped):
        return 0
    layout.write_last_ingest({**report, "skipped": kept})
    return len(skipped) - len(kept)
