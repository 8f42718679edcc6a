"""What ragline keeps under its data dir, named in one place.

```
<data_dir>/
  generations/<N>/    generations of the embedded index, and PUBLISHED, the one served (ragline.store.generations)
  index/              the embedded index of a data dir made before generations (served as generation 1)
  crawl/              crawled pages and their manifest (ragline.sources.pagestore)
  last-ingest.json    the last ingest's report, for ``ragline status``
  snapshots/<name>/   copies of the index (ragline.ops.snapshot)
```
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class DataLayout:
    __slots__ = ("crawl", "index", "last_ingest", "root", "snapshots")

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.index = self.root / "index"
        self.crawl = self.root / "crawl"
        self.last_ingest = self.root / "last-ingest.json"
        self.snapshots = self.root / "snapshots"

    def write_last_ingest(self, report: dict[str, Any]) -> None:
        """Keep the last ingest's report beside the index (written whole, then renamed)."""
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.last_ingest.with_name(self.last_ingest.name + ".tmp")
        tmp.write_text(json.dumps(report), encoding="utf-8")
        tmp.replace(self.last_ingest)

    def read_last_ingest(self) -> dict[str, Any] | None:
        try:
            report = json.loads(self.last_ingest.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return report if isinstance(report, dict) else None
