"""A small folder of documents with phrases found nowhere else, and components over a fresh data dir."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ragline.components import Components
from ragline.config import load_settings

# file -> text; each body sentence is a phrase no other document holds.
DOCS = {
    "alpha.md": "# Alpha guide\n\n## Setup\n\nThe vermilion pangolin sings at dawn beside the quarry.\n",
    "beta.md": "# Beta guide\n\n## Usage\n\nThe saffron walrus juggles ice cubes on Tuesdays.\n",
    "old/gamma.md": "# Gamma notes\n\n## History\n\nThe obsidian marmot knits woollen sweaters for owls.\n",
    "old/delta.md": "# Delta notes\n\n## Legacy\n\nThe cobalt tapir paints lighthouses in the fog.\n",
    "epsilon.md": "# Epsilon guide\n\n## Maps\n\nThe indigo lynx reads ancient maps by candlelight.\n",
}


def write_docs(root: Path, docs: dict[str, str] = DOCS) -> Path:
    for name, text in docs.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    return write_docs(tmp_path / "docs")


@pytest.fixture
def comp(tmp_path: Path) -> Iterator[Components]:
    c = Components(load_settings(data_dir=tmp_path / "data"))
    yield c
    c.close()
