"""Local files: walking folders, URL templates, and every way a file can be unusable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ragline.config import ParseSettings
from ragline.errors import SourceError
from ragline.parse import PARSERS, Parser
from ragline.records import Document
from ragline.sources.files import LocalFile, iter_files, load_document, source_url

SETTINGS = ParseSettings()


def _write(path: Path, data: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data, encoding="utf-8")
    return path


def _file(path: Path) -> LocalFile:
    return LocalFile(path=path, root=path.parent, relpath=path.name)


def _reason(path: Path, settings: ParseSettings = SETTINGS) -> str:
    with pytest.raises(SourceError) as info:
        load_document(_file(path), settings)
    return str(info.value)


# ----------------------------------------------------------------------------- URL templates


@pytest.mark.parametrize(
    ("template", "url"),
    [
        ("https://docs.ray.io/en/master/{path_noext}.html", "https://docs.ray.io/en/master/serve/getting started.html"),
        ("https://h/{path}", "https://h/serve/getting%20started.md"),
        ("https://h/{stem}/", "https://h/getting%20started/"),
        ("file:///docs/{name}#{unknown}", "file:///docs/getting started.md#{unknown}"),
    ],
)
def test_source_url(template: str, url: str) -> None:
    expected = url.replace("getting started.html", "getting%20started.html")
    assert source_url("serve/getting started.md", template) == expected


def test_source_url_without_extension_and_windows_separators() -> None:
    assert source_url("docs\\README", "https://h/{path_noext}") == "https://h/docs/README"
    assert source_url("a/b.c/index.rst", "https://h/{path_noext}.html") == "https://h/a/b.c/index.html"


# ----------------------------------------------------------------------------- walking


def test_iter_files_walks_sorted_skipping_hidden_and_unknown(tmp_path: Path) -> None:
    root = tmp_path / "docs"
    for rel in [
        "b.md",
        "a/z.rst",
        "a/y.ipynb",
        "page.html",
        "notes.txt",
        "image.png",
        "script.py",
        ".hidden.md",
        ".git/HEAD.md",
        "node_modules/pkg/readme.md",
        "_templates/t.rst",
        "a/.cache/x.md",
    ]:
        _write(root / rel, "x")
    found = list(iter_files([root]))
    assert [f.relpath for f in found] == ["a/y.ipynb", "a/z.rst", "b.md", "notes.txt", "page.html"]
    assert all(f.root == root.absolute() and f.path.is_absolute() for f in found)


def test_explicit_files_are_yielded_once_even_if_unsupported(tmp_path: Path) -> None:
    page = _write(tmp_path / "docs" / "page.md", "# T\n\nx")
    other = _write(tmp_path / "other.py", "print()")
    found = list(iter_files([tmp_path / "docs", page, other, tmp_path / "missing.md"]))
    assert [(f.relpath, f.root) for f in found] == [
        ("page.md", (tmp_path / "docs").absolute()),
        ("other.py", tmp_path.absolute()),
        ("missing.md", tmp_path.absolute()),
    ]
    assert "unsupported file type '.py'" in _reason(other)
    assert _reason(tmp_path / "missing.md").startswith("unreadable:")


# ----------------------------------------------------------------------------- loading


def test_load_document_sets_source_path_and_metadata(tmp_path: Path) -> None:
    path = _write(tmp_path / "serve" / "index.md", "# Ray Serve\n\nServe models.\n")
    file = LocalFile(path=path, root=tmp_path, relpath="serve/index.md")
    doc = load_document(file, ParseSettings(url_template="https://docs.ray.io/en/master/{path_noext}.html"))
    assert doc.source == "https://docs.ray.io/en/master/serve/index.html"
    assert doc.path == str(path) and doc.metadata == {"path": "serve/index.md"}
    assert [(s.title, s.anchor) for s in doc.sections] == [("Ray Serve", "ray-serve")]
    assert load_document(file, SETTINGS).source == path.absolute().as_posix()


def test_canonical_link_wins_over_the_template(tmp_path: Path) -> None:
    html = "<html><head><link rel=canonical href='https://example.org/p'></head><body><h1>T</h1><p>x</p></body></html>"
    doc = load_document(_file(_write(tmp_path / "p.html", html)), ParseSettings(url_template="https://h/{path}"))
    assert doc.source == "https://example.org/p"


def test_empty_files(tmp_path: Path) -> None:
    assert _reason(_write(tmp_path / "zero.md", b"")) == "empty file"
    assert _reason(_write(tmp_path / "blank.md", "\n\n   \n")) == "empty: no text after parsing"
    assert (
        _reason(_write(tmp_path / "chrome.html", "<nav>menu</nav><footer>f</footer>")) == "empty: no text after parsing"
    )
    empty_nb = json.dumps({"nbformat": 4, "cells": []})
    assert _reason(_write(tmp_path / "empty.ipynb", empty_nb)) == "empty: no text after parsing"


def test_binary_file(tmp_path: Path) -> None:
    assert (
        _reason(_write(tmp_path / "logo.md", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(200))) == "binary content"
    )


def test_too_big_is_refused_before_reading(tmp_path: Path) -> None:
    path = _write(tmp_path / "big.md", "# Big\n\n" + "word " * 1000)
    reason = _reason(path, ParseSettings(max_file_bytes=1000))
    assert reason.startswith("too big:") and "1000" in reason
    assert load_document(_file(path), ParseSettings(max_file_bytes=10_000)).title == "Big"


def test_invalid_utf8(tmp_path: Path) -> None:
    assert _reason(_write(tmp_path / "latin.rst", "Café\n====\n\nolé\n".encode("latin-1"))).startswith("invalid UTF-8")
    declared = '<meta charset="windows-1252"><h1>Caf\xe9</h1><p>ol\xe9</p>'.encode("latin-1")
    assert load_document(_file(_write(tmp_path / "legacy.html", declared)), SETTINGS).title == "Café"


def test_broken_notebook(tmp_path: Path) -> None:
    assert _reason(_write(tmp_path / "nb.ipynb", '{"cells": [{"cell_type": "mark')).startswith("invalid notebook JSON")


def test_malformed_html_is_parsed_gracefully(tmp_path: Path) -> None:
    broken = "<html><body><main><h1>Title<p>open <b>bold</i></td><h2>Next</h2>text &amp &bogus; <<>"
    doc = load_document(_file(_write(tmp_path / "broken.html", broken)), SETTINGS)
    assert "Next" in [s.title for s in doc.sections] and "text & &bogus;" in doc.text
    deep = "<main><h1>Deep</h1>" + "<div><span>" * 5000 + "bottom" + "</span></div>" * 5000 + "</main>"
    assert "bottom" in load_document(_file(_write(tmp_path / "deep.html", deep)), SETTINGS).text


def test_a_directory_named_like_a_document(tmp_path: Path) -> None:
    (tmp_path / "folder.md").mkdir()
    assert _reason(tmp_path / "folder.md") == "unreadable: not a regular file"


def test_parser_crash_is_wrapped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def crash(text: str, ctx: object) -> Document:
        raise KeyError("surprise")

    monkeypatch.setitem(PARSERS, "markdown", Parser("markdown", (".md",), crash))
    assert _reason(_write(tmp_path / "x.md", "# T")) == "parser failed: KeyError: 'surprise'"


def test_one_bad_file_does_not_stop_the_rest(tmp_path: Path) -> None:
    _write(tmp_path / "a.md", "# A\n\ntext")
    _write(tmp_path / "b.ipynb", "{broken")
    _write(tmp_path / "c.rst", "C\n=\n\ntext")
    results: dict[str, str] = {}
    for file in iter_files([tmp_path]):
        try:
            results[file.relpath] = load_document(file, SETTINGS).title
        except SourceError as exc:
            results[file.relpath] = f"error: {exc}"
    assert results["a.md"] == "A" and results["c.rst"] == "C"
    assert results["b.ipynb"].startswith("error: invalid notebook JSON")
