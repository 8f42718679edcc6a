"""PDF: page anchors, outline headings, clean text; encrypted, scanned, broken and oversized files are skipped
with a reason; the real Debian Reference manual against its own HTML; a folder of PDF and DOCX ingested end to end.

The small PDFs are written here by hand (``build_pdf``): pages of text in a standard font, an optional outline,
an optional standard security handler.
"""

from __future__ import annotations

import io
import re
import sys
import threading
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ragline.config import ParseSettings
from ragline.errors import SourceError
from ragline.parse import PARSERS, BinaryParser, kind_for, kind_for_media_type, parse_bytes
from ragline.records import Document

SETTINGS = ParseSettings()
FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)


@dataclass
class Mark:
    """An outline entry: a title pointing at a page (zero-based), with entries under it."""

    title: str
    page: int
    kids: list[Mark] = field(default_factory=list)


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def build_pdf(
    pages: list[list[str]],
    *,
    outline: list[Mark] | None = None,
    title: str | None = None,
    encrypted: bool = False,
    image_only: bool = False,
    compress: bool = False,
) -> bytes:
    """A PDF with one line of Helvetica text per string on each page (``image_only``: a filled box instead)."""
    objects: list[bytes] = []  # object n is objects[n - 1]

    def add(body: bytes) -> int:
        objects.append(body)
        return len(objects)

    catalog = add(b"")  # filled in once the pages and outline exist
    tree = add(b"")
    font = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    page_ids: list[int] = []
    for lines in pages:
        if image_only:
            stream = b"0.5 g 72 72 400 600 re f"
        else:
            shown = b" T* ".join(f"({_escape(line)}) Tj".encode("latin-1") for line in lines)
            stream = b"BT /F1 11 Tf 14 TL 72 760 Td " + shown + b" ET"
        head = b"/Length %d" % len(stream)
        if compress:
            stream = zlib.compress(stream, 9)
            head = b"/Length %d /Filter /FlateDecode" % len(stream)
        content = add(b"<< %s >>\nstream\n" % head + stream + b"\nendstream")
        page_ids.append(
            add(
                b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 612 792] /Contents %d 0 R "
                b"/Resources << /Font << /F1 %d 0 R >> >> >>" % (tree, content, font)
            )
        )
    kids = b" ".join(b"%d 0 R" % p for p in page_ids)
    objects[tree - 1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, len(page_ids))
    extra = b""
    if outline:
        root = add(b"")
        first, last, count = _outline_items(outline, root, page_ids, add, objects)
        objects[root - 1] = b"<< /Type /Outlines /First %d 0 R /Last %d 0 R /Count %d >>" % (first, last, count)
        extra = b" /Outlines %d 0 R /PageMode /UseOutlines" % root
    objects[catalog - 1] = b"<< /Type /Catalog /Pages %d 0 R%s >>" % (tree, extra)
    trailer = b"/Root %d 0 R" % catalog
    if title is not None:
        trailer += b" /Info %d 0 R" % add(f"<< /Title ({_escape(title)}) >>".encode("latin-1"))
    if encrypted:
        # The standard security handler (RC4, revision 2) with a user password that is not empty: a reader
        # without the password cannot open the file, whatever the streams hold.
        handler = add(b"<< /Filter /Standard /V 1 /R 2 /O <%s> /U <%s> /P -44 >>" % (b"ab" * 32, b"cd" * 32))
        trailer += b" /Encrypt %d 0 R /ID [<%s> <%s>]" % (handler, b"01" * 16, b"01" * 16)
    trailer = b"/Size %d " % (len(objects) + 1) + trailer
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for n, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n%s\nendobj\n" % (n, body))
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    out.write(b"".join(b"%010d 00000 n \n" % off for off in offsets))
    out.write(b"trailer\n<< %s >>\nstartxref\n%d\n%%%%EOF\n" % (trailer, xref))
    return out.getvalue()


def _outline_items(
    marks: list[Mark], parent: int, page_ids: list[int], add: object, objects: list[bytes]
) -> tuple[int, int, int]:
    assert callable(add)
    ids = [add(b"") for _ in marks]
    count = len(marks)
    for i, (mark, oid) in enumerate(zip(marks, ids, strict=True)):
        parts = [
            f"/Title ({_escape(mark.title)})".encode("latin-1"),
            b"/Parent %d 0 R /Dest [%d 0 R /Fit]" % (parent, page_ids[mark.page]),
        ]
        if i > 0:
            parts.append(b"/Prev %d 0 R" % ids[i - 1])
        if i + 1 < len(ids):
            parts.append(b"/Next %d 0 R" % ids[i + 1])
        if mark.kids:
            first, last, n = _outline_items(mark.kids, oid, page_ids, add, objects)
            parts.append(b"/First %d 0 R /Last %d 0 R /Count %d" % (first, last, n))
            count += n
        objects[oid - 1] = b"<< " + b" ".join(parts) + b" >>"
    return ids[0], ids[-1], count


def parse(data: bytes, **kwargs: object) -> Document:
    return parse_bytes(data, source="https://docs.example/guide.pdf", kind="pdf", settings=SETTINGS, **kwargs)  # type: ignore[arg-type]


def test_the_registry_knows_pdf_by_extension_and_media_type() -> None:
    assert kind_for("manuals/Guide.PDF") == "pdf"
    assert kind_for_media_type("application/pdf") == kind_for_media_type("Application/PDF; qs=0.9") == "pdf"
    assert kind_for_media_type("text/html; charset=utf-8") == "html"
    assert kind_for_media_type("image/png") is None
    assert isinstance(PARSERS["pdf"], BinaryParser)


def test_pages_without_an_outline_are_sections_anchored_at_their_page() -> None:
    data = build_pdf([["Installing the agent", "Run the installer."], [], ["Upgrading (safely)", "Stop it first."]])
    doc = parse(data, path="/docs/guide.pdf")
    assert doc.kind == "pdf" and doc.title == "guide.pdf"  # no metadata title: the file name
    assert [(s.title, s.anchor) for s in doc.sections] == [("Page 1", "page=1"), ("Page 3", "page=3")]
    assert doc.sections[0].text == "Installing the agent\nRun the installer."
    assert doc.sections[1].text == "Upgrading (safely)\nStop it first."
    assert parse(build_pdf([["x"]], title="The Agent Guide")).title == "The Agent Guide"


def test_outline_entries_are_headings_anchored_at_their_page() -> None:
    pages = [
        ["Agent Guide", "Contents"],
        ["1 Installing", "Download the package.", "1.1 On Linux", "Use the tarball.", "more on linux"],
        ["Linux, continued.", "2 Configuring", "Edit agent.toml."],
    ]
    outline = [
        Mark("Installing", 1, [Mark("On Linux", 1)]),
        Mark("Configuring", 2),
        Mark("Nowhere to be seen", 2),  # its title is not on its page: it starts where the page part starts
    ]
    doc = parse(build_pdf(pages, outline=outline))
    got = [(s.title, s.anchor, s.level, s.text) for s in doc.sections]
    assert got == [
        ("guide.pdf", "page=1", 1, "Agent Guide\nContents"),  # before the first entry: the document title
        ("Installing", "page=2", 1, "1 Installing\nDownload the package."),
        ("On Linux", "page=2", 2, "1.1 On Linux\nUse the tarball.\nmore on linux"),
        ("On Linux", "page=3", 2, "Linux, continued."),  # a section never spans a page break
        ("Nowhere to be seen", "page=3", 1, "2 Configuring\nEdit agent.toml."),
    ]
    assert doc.title == "guide.pdf"  # no metadata title: the file (or URL) name


def test_outline_entries_out_of_page_order_are_sorted() -> None:
    pages = [["A first", "alpha"], ["B second", "beta"]]
    doc = parse(build_pdf(pages, outline=[Mark("B second", 1), Mark("A first", 0)], title="T"))
    assert [(s.title, s.anchor) for s in doc.sections] == [("A first", "page=1"), ("B second", "page=2")]


def test_running_headers_and_footers_are_dropped() -> None:
    pages = [[f"Agent Guide {n} / 5", f"Body text of page {n}.", f"Confidential - page {n}"] for n in range(1, 6)]
    doc = parse(build_pdf(pages))
    assert [s.text for s in doc.sections] == [f"Body text of page {n}." for n in range(1, 6)]


def test_encrypted_pdfs_are_skipped_with_the_reason() -> None:
    with pytest.raises(SourceError, match=r"^encrypted PDF: a password is needed"):
        parse(build_pdf([["secret text"]], encrypted=True))


def test_pdfs_encrypted_by_another_writer() -> None:
    pypdf = pytest.importorskip("pypdf", reason="pypdf writes the AES-encrypted PDFs of this test")
    for user_password, readable in (("s3cret", False), ("", True)):  # an owner password alone hides nothing
        writer = pypdf.PdfWriter(clone_from=io.BytesIO(build_pdf([["Locked words here"]])))
        writer.encrypt(user_password=user_password, owner_password="owner", algorithm="AES-256")
        out = io.BytesIO()
        writer.write(out)
        if readable:
            assert parse(out.getvalue()).text == "Locked words here"
        else:
            with pytest.raises(SourceError, match=r"^encrypted PDF"):
                parse(out.getvalue())


def test_scanned_pdfs_without_a_text_layer_are_skipped() -> None:
    with pytest.raises(SourceError, match=r"^no text layer \(a scanned PDF\?\): no text on 3 page\(s\)$"):
        parse(build_pdf([["a"], ["b"], ["c"]], image_only=True))


@pytest.mark.parametrize(
    "data",
    [b"%PDF-1.7\n", b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog", b"<html><body>not a pdf</body></html>", b"\x00" * 64],
    ids=["header-only", "cut-in-object", "html", "nul"],
)
def test_broken_pdfs_are_skipped_with_a_reason(data: bytes) -> None:
    with pytest.raises(SourceError, match=r"^not a readable PDF|^no pages|^no text layer"):
        parse(data)


def test_oversized_pdfs_are_skipped() -> None:
    data = build_pdf([["word " * 16] * 50 for _ in range(10)], compress=True)
    with pytest.raises(SourceError, match=r"^too big: .* bytes > max_file_bytes 100$"):
        parse_bytes(data, source="s", kind="pdf", settings=ParseSettings(max_file_bytes=100))
    # Under the file limit, the extracted text has the same bound: compressed streams hold much more.
    with pytest.raises(SourceError, match=r"^too big: text over max_file_bytes \d+ by page \d+$"):
        parse_bytes(data, source="s", kind="pdf", settings=ParseSettings(max_file_bytes=len(data) + 1000))
    # A page tree that names one page object 60,000 times: a small file with more pages than any manual.
    one = build_pdf([["x"]])
    many = one.replace(b"/Kids [5 0 R] /Count 1", b"/Kids [%s] /Count 60000" % b" ".join([b"5 0 R"] * 60000))
    with pytest.raises(SourceError, match=r"^too big: 60000 pages > 50000$"):
        parse(many)


def test_missing_library_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pypdfium2", None)  # import fails as if it were not installed
    with pytest.raises(SourceError, match=re.escape("pypdfium2 is not installed: pip install 'ragline[documents]'")):
        parse(build_pdf([["x"]]))


def test_parsing_in_threads_gives_the_same_documents() -> None:
    # PDFium is not thread-safe: the local engine's threads must take turns (a crash here would kill pytest).
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa"]
    pages = [[f"{w} {n}", f"About {w} in {10 * n} words."] for n, w in enumerate(words * 3)]
    data = build_pdf(pages, outline=[Mark("gamma", 2)])
    expected = parse(data).text
    results: list[str] = []

    def work() -> None:
        for _ in range(5):
            results.append(parse(data).text)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [expected] * 20


VALID = build_pdf([["Heading one", "Some text."], ["Second page", "More text."]], outline=[Mark("Heading one", 0)])


def _parses_or_rejects(data: bytes) -> None:
    try:
        doc = parse(data)
    except SourceError as exc:
        assert str(exc)
        return
    for s in doc.sections:
        assert doc.text[s.start : s.end] == s.text and re.fullmatch(r"page=\d+", s.anchor or "")


@FUZZ
@given(cut=st.integers(0, len(VALID)))
def test_truncated_pdfs_parse_or_are_rejected(cut: int) -> None:
    _parses_or_rejects(VALID[:cut])


@FUZZ
@given(flips=st.lists(st.tuples(st.integers(0, len(VALID) - 1), st.integers(0, 255)), min_size=1, max_size=12))
def test_corrupted_pdfs_parse_or_are_rejected(flips: list[tuple[int, int]]) -> None:
    data = bytearray(VALID)
    for at, byte in flips:
        data[at] = byte
    _parses_or_rejects(bytes(data))


@FUZZ
@given(data=st.binary(max_size=2048))
def test_arbitrary_bytes_with_a_pdf_header_are_rejected_or_parse(data: bytes) -> None:
    _parses_or_rejects(b"%PDF-1.4\n" + data)


# -- the real manual ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def debian(corpora: Path) -> tuple[Document, list[Document]]:
    folder = corpora / "debian-reference"
    pdf = folder / "debian-reference.en.pdf"
    doc = parse_bytes(pdf.read_bytes(), source=pdf.as_posix(), kind="pdf", settings=SETTINGS, path=str(pdf))
    chapters = [
        parse_bytes(p.read_bytes(), source=p.name, kind="html", settings=SETTINGS)
        for p in sorted((folder / "html").glob("ch*.html"))
    ]
    return doc, chapters


def _squash(text: str) -> str:
    return " ".join(text.split())


def test_debian_reference_page_anchors_and_outline_headings(debian: tuple[Document, list[Document]]) -> None:
    doc, chapters = debian
    assert doc.title == "Debian Reference"
    pages = {int(s.anchor.removeprefix("page=")) for s in doc.sections if s.anchor}
    assert all(s.anchor and re.fullmatch(r"page=\d+", s.anchor) for s in doc.sections)
    assert len(pages) >= 250 and max(pages) == 261  # one anchor per page with text (the cover has none)
    # Outline entries are the sections' titles, and each starts on the page whose text shows that heading.
    html_titles = {_squash(re.sub(r"^[\dA-Z]+(\.\d+)*\.?\s+", "", s.title)) for c in chapters for s in c.sections}
    starts = [s for s in doc.sections if s.level > 1 and _squash(s.text).split(" ", 1)[-1].startswith(s.title)]
    assert len(starts) >= 400
    titles = {s.title for s in starts}
    assert len(titles & html_titles) / len(titles) >= 0.9
    assert "Console basics" in titles


def test_debian_reference_text_keeps_its_spaces(debian: tuple[Document, list[Document]]) -> None:
    doc, chapters = debian
    text = _squash(doc.text)
    assert "List of ps command styles" in text  # the words another extractor runs together
    # Table captions and multi-word headings of the HTML chapters, found verbatim in the PDF's text.
    phrases = {
        _squash(re.sub(r"^[\dA-Z]+(\.\d+)*\.?\s+", "", s.title))
        for c in chapters
        for s in c.sections
        if len(s.title.split()) >= 4
    }
    assert len(phrases) >= 100
    found = [p for p in phrases if p in text]
    assert len(found) / len(phrases) >= 0.9


# -- end to end: a folder with a PDF and a DOCX, through the in-process engine -------------------------------


@pytest.mark.slow  # loads the bundled embedding model
def test_a_folder_of_pdf_and_docx_is_ingested_and_cited_by_page(tmp_path: Path) -> None:
    docx = pytest.importorskip("docx", reason="python-docx writes the DOCX of this test")
    from ragline.components import Components
    from ragline.config import load_settings
    from ragline.ingest.local import ingest

    folder = tmp_path / "docs"
    folder.mkdir()
    pages = [
        ["Flux Widget Manual", "Contents"],
        ["1 Calibration", "To calibrate the flux widget, turn the blue lever three times."],
    ]
    (folder / "widget.pdf").write_bytes(build_pdf(pages, outline=[Mark("Calibration", 1)]))
    word = docx.Document()
    word.add_heading("Storage", level=1)
    word.add_paragraph("Keep the flux widget in a dry cupboard between uses.")
    word.save(folder / "storage.docx")
    (folder / "scan.pdf").write_bytes(build_pdf([["x"]], image_only=True))
    comp = Components(load_settings(data_dir=tmp_path / "data"))
    try:
        report = ingest([folder], comp)
        assert report.added == 2
        assert [(Path(s.source).name, s.reason) for s in report.skipped] == [
            ("scan.pdf", "no text layer (a scanned PDF?): no text on 1 page(s)")
        ]
        hits = comp.retriever.search("how do I calibrate the flux widget", 3)
        assert hits[0].chunk.url == f"{(folder / 'widget.pdf').resolve().as_posix()}#page=2"
        assert hits[0].chunk.section == "Calibration"
        stored = comp.retriever.search("keep it in a dry cupboard between uses", 3)
        assert stored[0].chunk.url.endswith("storage.docx#storage")
    finally:
        comp.close()
