"""The ingest's embedding model loads once however many threads ask for it, is kept for the next ingest of the
same components, and a load that fails fails the ingest; HTML pages are parsed without the other kinds' parsers."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from ragline.config import BUNDLED_EMBEDDING_MODEL
from ragline.embed.onnx import OnnxEmbedder
from ragline.ingest.local import ingest

from .conftest import components

pytestmark = pytest.mark.slow

PAGES = {
    "serve.md": "# Serve\n\nRay Serve scales deployments by adding replicas.\n\n"
    "## Autoscaling\n\nIt follows the queue.\n",
    "data.html": "<html><body><main><h1>Data</h1>"
    "<p>Ray Data streams blocks between operators.</p></main></body></html>",
}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    root.mkdir()
    for name, text in PAGES.items():
        (root / name).write_text(text, encoding="utf-8")
    return root


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every ONNX model session built in this test (the tokenizers alone do not count)."""
    built: list[int] = []
    real = OnnxEmbedder._load

    def counted(self: OnnxEmbedder) -> None:
        built.append(id(self))
        real(self)

    monkeypatch.setattr(OnnxEmbedder, "_load", counted)
    return built


def test_threads_that_warm_up_at_once_share_one_load(loads: list[int]) -> None:
    embedder = OnnxEmbedder(BUNDLED_EMBEDDING_MODEL, threads=1)
    start = threading.Barrier(4)

    def warm() -> None:
        start.wait()
        embedder.warm_up()

    threads = [threading.Thread(target=warm) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert loads == [id(embedder)]
    assert embedder.embed_query("replicas").shape == (384,)


def test_an_ingest_loads_its_model_once_and_the_next_ingest_reuses_it(
    folder: Path, tmp_path: Path, loads: list[int]
) -> None:
    comp = components(tmp_path / "index")
    try:
        first = ingest([folder], comp)
        (folder / "serve.md").write_text("# Serve\n\nReplicas are added when the queue grows.\n", encoding="utf-8")
        second = ingest([folder], comp)
    finally:
        comp.close()
    model, calls = comp.ingest_model
    assert calls >= 1 and first.chunks_written > 0 and (second.updated, second.unchanged) == (1, 1)
    assert loads == [id(model)]  # the query embedder only counted tokens: no session of its own


def test_a_model_that_fails_to_load_fails_the_ingest(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: OnnxEmbedder) -> None:
        raise RuntimeError("the model file is unreadable")

    monkeypatch.setattr(OnnxEmbedder, "_load", broken)
    comp = components(tmp_path / "index")
    try:
        with pytest.raises(RuntimeError, match="unreadable"):
            ingest([folder], comp)
    finally:
        comp.close()


def test_html_pages_are_parsed_without_importing_the_other_kinds_parsers(folder: Path) -> None:
    def parse(name: str, kind: str) -> str:
        path = str(folder / name)
        return f"parse_bytes(open({path!r}, 'rb').read(), source={path!r}, kind={kind!r}, settings=ParseSettings())"

    code = (
        "import sys\n"
        "from ragline.config import ParseSettings\n"
        "from ragline.parse import parse_bytes\n"
        f"doc = {parse('data.html', 'html')}\n"
        "assert doc.title == 'Data', doc.title\n"
        "print(sorted(m for m in ('markdown_it', 'docutils.parsers.rst') if m in sys.modules))\n"
        f"doc = {parse('serve.md', 'markdown')}\n"
        "print([s.title for s in doc.sections], 'markdown_it' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["[]", "['Serve', 'Autoscaling'] True"]
