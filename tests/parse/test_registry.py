"""The parser registry and ``parse_bytes``: kinds, decoding, binary sniffing, error wrapping."""

from __future__ import annotations

import codecs

import pytest

from ragline.config import ParseSettings
from ragline.errors import SourceError
from ragline.parse import PARSERS, Parser, kind_for, looks_binary, looks_like_rst, parse_bytes
from ragline.parse.text import parse_text
from ragline.records import Document

SETTINGS = ParseSettings()


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("a/page.html", "html"),
        ("PAGE.HTM", "html"),
        ("x.md", "markdown"),
        ("x.mdx", "markdown"),
        ("x.markdown", "markdown"),
        ("x.rst", "rst"),
        ("x.ipynb", "notebook"),
        ("requirements.txt", "text"),
        ("x.py", None),
        ("x.png", None),
        ("Makefile", None),
    ],
)
def test_kind_for(name: str, kind: str | None) -> None:
    assert kind_for(name) == kind


def test_every_kind_has_a_parser_and_extensions() -> None:
    assert set(PARSERS) == {"html", "markdown", "rst", "notebook", "text", "pdf", "docx"}
    for kind, parser in PARSERS.items():
        assert parser.kind == kind and parser.extensions
        assert all(kind_for(f"f{ext}") == kind for ext in parser.extensions)


def test_plain_text_is_one_section_and_rst_txt_is_rst() -> None:
    doc = parse_bytes(b"\n\nFirst line\nsecond line\n", source="s", kind="text", settings=SETTINGS, path="/d/notes.txt")
    assert doc.kind == "text" and doc.title == "First line"
    assert [(s.title, s.anchor, s.text) for s in doc.sections] == [("First line", None, "First line\nsecond line")]
    rst = parse_bytes(b"Title\n=====\n\n.. note:: Body.\n", source="s", kind="text", settings=SETTINGS)
    assert rst.kind == "rst" and rst.sections[0].anchor == "title" and rst.text == "Body."
    assert parse_text("", source="s", fallback_title="empty.txt").title == "empty.txt"


def test_looks_like_rst() -> None:
    assert looks_like_rst("Title\n=====\n\ntext")
    assert looks_like_rst(".. _label:\n\ntext")
    assert not looks_like_rst("ray[rllib]\nnumpy==1.24\n")
    assert not looks_like_rst("== Status ==\nCurrent time: now\n")
    assert not looks_like_rst("Long title here\n===\n")  # underline shorter than the title


def test_binary_sniffing() -> None:
    assert looks_binary(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    assert looks_binary(bytes(range(1, 32)) * 50)
    assert not looks_binary("plain text — with UTF-8 ✓\n\ttabs".encode())
    assert not looks_binary(codecs.BOM_UTF16_LE + "text".encode("utf-16-le"))
    with pytest.raises(SourceError, match="binary"):
        parse_bytes(b"GIF89a\x00\x01", source="s", kind="markdown", settings=SETTINGS)


def test_decoding() -> None:
    bom = parse_bytes(codecs.BOM_UTF8 + "# Café\n\nx".encode(), source="s", kind="markdown", settings=SETTINGS)
    assert bom.title == "Café"
    utf16 = parse_bytes(
        codecs.BOM_UTF16_LE + "# T\n\nx".encode("utf-16-le"), source="s", kind="markdown", settings=SETTINGS
    )
    assert utf16.text == "x"
    with pytest.raises(SourceError, match=r"invalid UTF-8 at byte 5"):
        parse_bytes(b"# Caf\xe9", source="s", kind="markdown", settings=SETTINGS)


def test_unexpected_parser_errors_become_source_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(text: str, ctx: object) -> Document:
        raise ZeroDivisionError("division by zero")

    monkeypatch.setitem(PARSERS, "text", Parser("text", (".txt",), boom))
    with pytest.raises(SourceError, match=r"^parser failed: ZeroDivisionError: division by zero$"):
        parse_bytes(b"hello", source="s", kind="text", settings=SETTINGS)
    with pytest.raises(SourceError, match="no parser"):
        parse_bytes(b"hello", source="s", kind="no-such-kind", settings=SETTINGS)


def test_fallback_title_is_the_file_or_url_name() -> None:
    assert parse_bytes(b"<p>x</p>", source="https://h/a/b.html?q=1", kind="html", settings=SETTINGS).title == "b.html"
    assert parse_bytes(b"plain", source="s", kind="rst", settings=SETTINGS, path="/d/page.rst").title == "page.rst"
