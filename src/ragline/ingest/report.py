"""What an ingest did: the report both engines return, and the record of the last one that ``status`` shows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ragline.ingest.changes import Change
    from ragline.layout import DataLayout


@dataclass(slots=True)
class Skipped:
    source: str
    reason: str

    def to_json(self) -> dict[str, str]:
        return {"source": self.source, "reason": self.reason}


@dataclass(slots=True)
class IndexReport:
    documents: int = 0  # documents read and parsed in this run
    added: int = 0  # documents new to the index
    updated: int = 0  # documents whose content changed
    deleted: int = 0  # documents gone from their folder, removed from the index
    unchanged: int = 0
    chunks_written: int = 0  # chunks embedded and upserted in this run
    chunks_deleted: int = 0  # chunks of deleted documents removed in this run
    index_chunks: int = 0  # chunks in the whole index after the run (all runs, all tenants)
    skipped: list[Skipped] = field(default_factory=list)
    # Values replaced by redaction (parse.redact) in the documents read, by kind; never the values themselves.
    redacted: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def count(self, change: Change) -> None:
        setattr(self, change.value, getattr(self, change.value) + 1)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "redacted": dict(sorted(self.redacted.items())), "seconds": round(self.seconds, 3)}


def record_ingest(layout: DataLayout, report: IndexReport, paths: Sequence[str | Path], engine: str) -> None:
    """Keep this ingest's report beside the index (``last-ingest.json``), for ``ragline status``."""
    layout.write_last_ingest(
        {
            **report.to_json(),
            "finished": datetime.now(UTC).isoformat(timespec="seconds"),
            "paths": [str(p) for p in paths],
            "engine": engine,
        }
    )
