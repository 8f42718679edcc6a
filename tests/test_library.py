"""The Python API (ragline.library): its edges (docs/python.md's examples run in test_docs_python.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import ragline
from ragline.errors import BadRequestError, ConfigError, EmptyIndexError, RaglineError

ROOT = Path(__file__).resolve().parents[1]

# Two small Markdown pages.
DOCS = {
    "retries.md": "# Retries\n\n## Configuring retries\n\n"
    "Set `max_retries` in the client settings to retry a failed request up to that many times, "
    "waiting twice as long after each failure.\n\n"
    "## Timeouts\n\nA request that takes longer than `timeout` seconds is cancelled.\n",
    "install.md": "# Installing\n\n## With pip\n\nRun `pip install widgetkit` to install the widget kit from PyPI.\n",
}


def write_docs(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in DOCS.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


@pytest.mark.slow
def test_tenants_and_bad_input(tmp_path: Path) -> None:
    docs = write_docs(tmp_path / "docs")
    with ragline.open(tmp_path / "data") as rag:
        with pytest.raises(EmptyIndexError, match="ragline ingest"):
            rag.search("anything")
        rag.ingest(docs / "retries.md", tenant="acme")
        rag.ingest(docs / "install.md", tenant="globex")
        acme = rag.search("install the widget kit", k=5, tenant="acme")
        assert acme and {h.chunk.metadata["tenant"] for h in acme} == {"acme"}
        # A tenant filter cannot widen the search beyond the tenant.
        assert all(
            h.chunk.metadata["tenant"] == "acme" for h in rag.search("pip", filters={"tenant": "globex"}, tenant="acme")
        )
        with pytest.raises(BadRequestError, match="empty"):
            rag.search("   ")
        with pytest.raises(BadRequestError, match="k must be between"):
            rag.search("retry", k=0)
        with pytest.raises(BadRequestError, match="bad filter key"):
            rag.search("retry", filters={"no spaces allowed": "x"})
        with pytest.raises(BadRequestError, match="mode"):
            rag.ask("retry", mode="poetic")
        with pytest.raises(BadRequestError, match="nothing to ingest"):
            rag.ingest([])
        with pytest.raises(BadRequestError, match="every document"):
            rag.delete(" ")
        report = rag.ingest(docs / "retries.md", tenant="acme")
        assert report.unchanged == 1 and report.chunks_written == 0  # incremental, as on the command line
    with pytest.raises(RaglineError, match="closed"):
        rag.search("retry")


def test_open_refuses_bad_settings(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"invalid settings: llm\.max_tokens"):
        ragline.open(tmp_path, llm={"max_tokens": 0})
    with pytest.raises(ConfigError, match="not both"):
        ragline.open(tmp_path, settings=ragline.load_settings(data_dir=tmp_path))


def test_import_is_light() -> None:
    """``import ragline`` loads none of the heavy parts, and the lazy names resolve."""
    code = (
        "import sys, ragline\n"
        "heavy = [m for m in ('torch', 'onnxruntime', 'qdrant_edge', 'qdrant_client', 'numpy', 'pydantic')"
        " if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "assert ragline.open.__module__ == 'ragline.library' and ragline.Hit.__name__ == 'Hit'\n"
        "assert sorted(set(ragline.__all__) - {'__version__'}) == sorted(ragline._LAZY)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=60)
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        ragline.nothing  # noqa: B018


def test_the_package_is_typed() -> None:
    assert (ROOT / "src" / "ragline" / "py.typed").is_file()
    assert '"py.typed"' in (ROOT / "pyproject.toml").read_text(encoding="utf-8")


def test_open_names_a_settings_file_that_is_not_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAGLINE_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ragline.toml").write_text("[llm\nmodel = 1\n")
    with pytest.raises(ConfigError, match=r"^ragline\.toml: not valid TOML: .*\(at line 1, column 5\)$"):
        ragline.open(tmp_path / "data")
    (tmp_path / "ragline.toml").unlink()
    monkeypatch.setenv("RAGLINE_SERVE__API_KEYS", "not json")
    with pytest.raises(ConfigError, match=r"^RAGLINE_SERVE__API_KEYS: not valid JSON"):
        ragline.open(tmp_path / "data")
