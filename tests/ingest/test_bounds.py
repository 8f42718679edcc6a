"""Every input has a bound, and a document over one is skipped with the reason while the rest of the folder is
indexed: a link out of the folder, includes that expand past max_file_bytes, a 10 MB one-line page, rst nested
3,000 levels deep, a page of 100k links (real folder, real parsers, the bundled model, the embedded store)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragline.ingest import local
from ragline.ingest.stages import SKIPPED, chunk_rows, list_files, parse_file

from .conftest import components, points

pytestmark = pytest.mark.slow

REASONS = {
    "passwd.md": "outside the folder: a link leading out of it",
    "amplified.rst": "too big: over max_file_bytes 20000000 with the files it includes",
    "amplified.md": "too big: over max_file_bytes 20000000 with the files it includes",
    "oneline.md": "a line of 10000000 characters > max_line_chars 100000",
    "deep.rst": "indentation nested over 32 levels deep",
    "links.html": "too many chunks: over max_chunks 2000",
}


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("hostile")
    (base / "passwd").write_text("root:x:0:0:turquoise-secret:/root:/bin/bash\n")
    root = base / "docs"
    root.mkdir()
    (root / "good.md").write_text("# Herons\n\nThe grey heron sleeps on one leg.\n")
    (root / "guide.rst").write_text("Guide\n=====\n\nPlain words about kingfishers.\n\n.. literalinclude:: small.py\n")
    (root / "small.py").write_text("print('kingfisher')\n")
    (root / "big.py").write_text("x = 1  # a line of code\n" * 40_000)  # 960 KB, under the per-include cap
    (root / "passwd.md").symlink_to(base / "passwd")
    (root / "amplified.rst").write_text("Amp\n===\n\n" + ".. literalinclude:: big.py\n\n" * 30)
    (root / "amplified.md").write_text("# Amp\n\n" + "```{literalinclude} big.py\n```\n\n" * 30)
    (root / "oneline.md").write_text("w" * 10_000_000)
    (root / "deep.rst").write_text("\n\n".join(" " * i + "level" for i in range(3000)))
    links = "".join(f'<li><a href="https://x.org/{i}">link number {i}</a></li>' for i in range(100_000))
    (root / "links.html").write_text(f"<html><body><main><h1>Links</h1><ul>{links}</ul></main></body></html>")
    return root


def test_each_document_over_a_bound_is_skipped_and_the_rest_indexed(folder: Path, tmp_path: Path) -> None:
    comp = components(tmp_path / "data")
    try:
        report = local.ingest([folder], comp)
        assert {Path(s.source).name: s.reason for s in report.skipped} == REASONS
        stored = points(comp).values()
        assert {Path(p["source"]).name for p in stored} == {"good.md", "guide.rst"}
        assert not any("turquoise-secret" in p["text"] for p in stored)
        assert any("print('kingfisher')" in p["text"] for p in stored)  # includes within the bound still show
        assert report.documents == 2
    finally:
        comp.close()


def test_the_ray_stages_skip_a_document_over_the_chunk_bound(folder: Path, tmp_path: Path) -> None:
    comp = components(tmp_path / "data")
    _, _, rows = list_files([folder], comp.settings.parse)
    row = next(r for r in rows if r["relpath"] == "links.html")
    parsed = parse_file(row, parse=comp.settings.parse, metadata={}, stored={})
    (doc_row,) = chunk_rows(parsed, chunk=comp.settings.chunk, embedding=comp.settings.embedding)
    assert (doc_row["change"], doc_row["reason"]) == (SKIPPED, REASONS["links.html"])
