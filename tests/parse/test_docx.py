"""DOCX: headings as sections with slug anchors, tables and lists as text, content controls read; encrypted,
legacy, broken and oversized files are skipped with a reason. The documents are written here with python-docx.
"""

from __future__ import annotations

import copy
import io
import re
import sys
import zipfile
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ragline.config import ParseSettings
from ragline.errors import SourceError
from ragline.parse import PARSERS, BinaryParser, kind_for, kind_for_media_type, parse_bytes
from ragline.records import Document

docx = pytest.importorskip("docx", reason="python-docx (extra 'documents') writes and reads the DOCX files")

SETTINGS = ParseSettings()
FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
MEDIA = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def save(word: Any) -> bytes:
    out = io.BytesIO()
    word.save(out)
    return out.getvalue()


def parse(data: bytes, **kwargs: Any) -> Document:
    return parse_bytes(data, source="https://docs.example/guide.docx", kind="docx", settings=SETTINGS, **kwargs)


def sample() -> bytes:
    word = docx.Document()
    word.add_paragraph("Read this first.")
    word.add_heading("Installing the agent", level=1)
    word.add_paragraph("Download the package.")
    word.add_heading("On Linux", level=2)
    word.add_paragraph("Unpack the tarball.")
    word.add_heading("Installing the agent", level=1)  # a repeated heading gets its own anchor
    word.add_paragraph("Again, on Windows.")
    return save(word)


def test_the_registry_knows_docx_by_extension_and_media_type() -> None:
    assert kind_for("Guide.DOCX") == "docx" and kind_for("old.doc") is None
    assert kind_for_media_type(MEDIA) == "docx"
    assert isinstance(PARSERS["docx"], BinaryParser)


def test_headings_are_sections_with_slug_anchors() -> None:
    doc = parse(sample(), path="/docs/guide.docx")
    assert doc.kind == "docx" and doc.title == "Installing the agent"  # no title set: the first heading
    assert [(s.title, s.anchor, s.level, s.text) for s in doc.sections] == [
        ("Installing the agent", None, 1, "Read this first."),  # before the first heading: the document title
        ("Installing the agent", "installing-the-agent", 1, "Download the package."),
        ("On Linux", "on-linux", 2, "Unpack the tarball."),
        ("Installing the agent", "installing-the-agent-1", 1, "Again, on Windows."),
    ]


def test_the_title_comes_from_the_properties_or_the_title_style() -> None:
    word = docx.Document()
    word.add_heading("The Agent Guide", level=0)  # level 0 is the Title style
    word.add_paragraph("Body.")
    assert parse(save(word)).title == "The Agent Guide"
    word.core_properties.title = "Agent Guide, 2nd edition"
    doc = parse(save(word))
    assert doc.title == "Agent Guide, 2nd edition" and doc.text == "Body."


def test_custom_heading_styles_based_on_headings() -> None:
    word = docx.Document()
    style = word.styles.add_style("Chapter Head", docx.enum.style.WD_STYLE_TYPE.PARAGRAPH)
    style.base_style = word.styles["Heading 2"]
    word.add_paragraph("Tuning", style="Chapter Head")
    word.add_paragraph("Raise the limits.")
    assert [(s.title, s.anchor, s.level) for s in parse(save(word)).sections] == [("Tuning", "tuning", 2)]


def test_tables_are_rows_of_cells() -> None:
    word = docx.Document()
    word.add_heading("Ports", level=1)
    table = word.add_table(rows=3, cols=3)
    for r, row in enumerate([["port", "service", "notes"], ["22", "ssh", "keys only"], ["80", "http", ""]]):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    merged = table.cell(2, 1).merge(table.cell(2, 2))
    merged.text = "http (redirects)"
    word.add_paragraph("Close the rest.")
    assert parse(save(word)).sections[0].text == (
        "port | service | notes\n22 | ssh | keys only\n80 | http (redirects)\n\nClose the rest."
    )


def test_lists_keep_their_markers_and_levels() -> None:
    word = docx.Document()
    word.add_heading("Steps", level=1)
    for text in ("Stop the agent", "Upgrade it"):
        word.add_paragraph(text, style="List Number")
    word.add_paragraph("Check the version", style="List Bullet")
    word.add_paragraph("on the status page", style="List Bullet 2")
    word.add_paragraph("After the list.")
    word.add_paragraph("Start again", style="List Number")
    text = parse(save(word)).sections[0].text
    assert text.split("\n\n") == [
        "1. Stop the agent\n2. Upgrade it\n- Check the version\n  - on the status page",
        "After the list.",
        "3. Start again",  # Word continues a numbered list across paragraphs too
    ]


def test_text_inside_content_controls_is_read() -> None:
    word = docx.Document()
    word.add_heading("Form", level=1)
    para = word.add_paragraph("Filled in a content control.")
    sdt = para._p.makeelement(docx.oxml.ns.qn("w:sdt"), {})
    content = sdt.makeelement(docx.oxml.ns.qn("w:sdtContent"), {})
    sdt.append(content)
    para._p.addprevious(sdt)
    content.append(para._p)  # moves the paragraph inside the control
    assert parse(save(word)).sections[0].text == "Filled in a content control."


def test_a_document_without_text_has_no_sections() -> None:
    doc = parse(save(docx.Document()))
    assert doc.sections == []  # the folder walk reports it as "empty: no text after parsing"


def test_encrypted_and_legacy_word_files_are_skipped_with_the_reason() -> None:
    # Both are OLE compound files, not zips: Word wraps a password-protected package in one with an
    # "EncryptionInfo" stream; a legacy .doc renamed to .docx has none.
    ole = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504
    with pytest.raises(SourceError, match=r"^encrypted DOCX: a password is needed"):
        parse(ole + "EncryptionInfo".encode("utf-16-le") + b"\x00" * 64)
    with pytest.raises(SourceError, match=r"^not a DOCX: an OLE file \(a legacy \.doc\?\)$"):
        parse(ole)


@pytest.mark.parametrize("cut", [10, 200, 0.5, 0.9, -22], ids=["10", "200", "half", "90pct", "no-end-record"])
def test_truncated_docx_is_skipped_with_a_reason(cut: float) -> None:
    data = sample()
    n = int(len(data) * cut) if isinstance(cut, float) else cut
    with pytest.raises(SourceError, match=r"^not a readable DOCX"):
        parse(data[:n])


def test_a_zip_that_is_not_a_word_document_is_skipped() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("readme.txt", "just a zip")
    with pytest.raises(SourceError, match=r"^not a readable DOCX: KeyError: .*Content_Types"):
        parse(out.getvalue())


def test_oversized_docx_is_skipped_before_it_is_unpacked() -> None:
    data = sample()
    with pytest.raises(SourceError, match=r"^too big: \d+ bytes > max_file_bytes 1000$"):
        parse_bytes(data, source="s", kind="docx", settings=ParseSettings(max_file_bytes=1000))
    # A small file that unpacks to much more: a zip bomb in miniature.
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            dst.writestr(item, src.read(item.filename))
        dst.writestr("word/media/padding.bin", b"\x00" * 5_000_000)
    bomb = out.getvalue()
    limit = len(bomb) + 1000
    assert limit * 5 < 5_000_000
    with pytest.raises(SourceError, match=rf"^too big: unpacks to \d+ bytes > 5 x max_file_bytes {limit}$"):
        parse_bytes(bomb, source="s", kind="docx", settings=ParseSettings(max_file_bytes=limit))


def test_missing_library_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "docx", None)
    with pytest.raises(SourceError, match=re.escape("python-docx is not installed: pip install 'ragline[documents]'")):
        parse(sample())


VALID = sample()


def _parses_or_rejects(data: bytes) -> None:
    try:
        doc = parse(data)
    except SourceError as exc:
        assert str(exc)
        return
    for s in doc.sections:
        assert s.text.strip() and doc.text[s.start : s.end] == s.text


@FUZZ
@given(cut=st.integers(0, len(VALID)))
def test_truncated_docx_parse_or_are_rejected(cut: int) -> None:
    _parses_or_rejects(VALID[:cut])


@FUZZ
@given(flips=st.lists(st.tuples(st.integers(0, len(VALID) - 1), st.integers(0, 255)), min_size=1, max_size=12))
def test_corrupted_docx_parse_or_are_rejected(flips: list[tuple[int, int]]) -> None:
    data = bytearray(VALID)
    for at, byte in flips:
        data[at] = byte
    _parses_or_rejects(bytes(data))


@FUZZ
@given(xml=st.text(max_size=300))
def test_arbitrary_document_xml_parses_or_is_rejected(xml: str) -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(VALID)) as src, zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            body = src.read(item.filename)
            if item.filename == "word/document.xml":
                body = body.replace(b"Unpack the tarball.", xml.encode("utf-8", "surrogatepass"))
            dst.writestr(copy.copy(item), body)
    _parses_or_rejects(out.getvalue())
