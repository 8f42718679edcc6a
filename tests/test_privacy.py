"""Privacy: redaction at ingest (patterns, offsets, both engines' stages, the report) and forgetting cached pages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ragline.chunk import Chunker
from ragline.config import ParseSettings, load_settings
from ragline.ops.forget import forget_cached
from ragline.parse import parse_bytes
from ragline.privacy import KINDS, Redactor, query_ref, redact_text
from ragline.sources.pagestore import PageStore, read_manifest

POSITIVES = [
    ("write to jane.doe+docs@example.co.uk today", "email"),
    ("call +1 (555) 123-4567 now", "phone"),
    ("call +44 20 7946 0958 now", "phone"),
    ("call (555) 123-4567 now", "phone"),
    ("call 555-123-4567 now", "phone"),
    ("the head node is 203.0.113.42 here", "ip"),
    ("the host 2001:db8:85a3::8a2e:370:7334 answers", "ip"),
    ("link-local fe80::1ff:fe23:4567:890a too", "ip"),
    ("key sk-proj-abcdefghijklmnopqrstuvwxyz123456 used", "secret"),
    ("AWS AKIAIOSFODNN7EXAMPLE here", "secret"),
    ("token ghp_abcdefghijklmnopqrstuvwxyz0123456789 here", "secret"),
    ("token github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz here", "secret"),
    ("slack xoxb-123456789012-abcdefghijkl here", "secret"),
    (
        "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U here",
        "secret",
    ),
    ("Authorization: Bearer abcDEF1234567890xyz", "secret"),
    ('api_key = "a1b2c3d4e5f6g7h8i9j0"', "secret"),
    ('{"password": "Sup3rS3cretPassw0rd!"}', "secret"),
    ("-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA3x\n-----END RSA PRIVATE KEY-----", "secret"),
]

# Typical documentation text that must come through untouched.
NEGATIVES = [
    "Ray v2.3.1 was released on 2023-06-01; upgrade with pip install ray==2.9.0.",
    "Serve listens on port 8000 at 127.0.0.1 (or 0.0.0.0), the dashboard on localhost:8265.",
    "Use every other row with a[1::2]; the job ran from 12:30:45 to 13:02:10.",
    "Process 1234567890 rows in 10 batches of 1e-5 seconds; python3.10.12 and 1.2.3.4.5 both work.",
    "git clone git@github.com:ray-project/ray.git",
    "max_tokens = 256 and api_key = os.environ['OPENAI_API_KEY'] and token=\"<your-token>\"",
    "Authorization: Bearer YOUR_API_KEY_HERE or api_key='sk-...'",
    "The netmask 255.255.255.0, commit 3f2a9c1b, uuid 123e4567-e89b-12d3-a456-426614174000, date 2023.06.01.",
    "ISBN 978-3-16-148410-0, a 3x3 matrix, 10.0.0.1.2 is not an address, -- and [1, 2, 3].",
]


@pytest.mark.parametrize(("text", "kind"), POSITIVES)
def test_each_kind_is_replaced_by_its_placeholder(text: str, kind: str) -> None:
    out, counts = redact_text(text)
    assert counts == {kind: 1}
    assert f"[{kind.upper()}]" in out
    # Nothing of the value survives: no run of 6+ characters of it is left beside the placeholder.
    value_words = [w for w in text.split() if len(w) >= 12 and any(c.isdigit() for c in w)]
    for word in value_words:
        assert word.strip('"{},') not in out


@pytest.mark.parametrize("text", NEGATIVES)
def test_ordinary_documentation_text_is_left_alone(text: str) -> None:
    assert redact_text(text) == (text, {})


def test_names_stay_when_only_values_go() -> None:
    out, _ = redact_text('Authorization: Bearer abcDEF1234567890xyz and api_key = "a1b2c3d4e5f6g7h8i9j0"')
    assert out == 'Authorization: Bearer [SECRET] and api_key = "[SECRET]"'


def test_kinds_can_be_chosen() -> None:
    text = "mail jane@example.org from 203.0.113.42"
    assert Redactor(["email"]).redact(text) == "mail [EMAIL] from 203.0.113.42"
    with pytest.raises(ValueError, match="unknown redaction kinds"):
        Redactor(["email", "ssn"])


SECRET_PAGE = b"""<html><head><title>Ops notes</title></head><body><main>
<h1>Contact jane.doe@example.com</h1>
<p>Page the on-call at +1 (555) 123-4567 or ssh to 203.0.113.42.</p>
<h2>Deploy</h2>
<pre>export OPENAI_API_KEY=sk-proj-abcdefghijklmnopqrstuvwxyz123456
curl -H "Authorization: Bearer abcDEF1234567890xyz" https://api.example.com</pre>
<p>Release v2.3.1 on 2023-06-01 listens on port 8000.</p>
</main></body></html>"""
SECRET_VALUES = [
    "jane.doe@example.com",
    "555",
    "203.0.113.42",
    "sk-proj-abcdefghijklmnopqrstuvwxyz123456",
    "abcDEF1234567890xyz",
]


def test_parse_redacts_titles_and_text_and_keeps_offsets_consistent() -> None:
    plain = parse_bytes(SECRET_PAGE, source="https://x.example/ops", kind="html", settings=ParseSettings())
    doc = parse_bytes(SECRET_PAGE, source="https://x.example/ops", kind="html", settings=ParseSettings(redact=True))
    assert plain.redacted == {} and any(v in plain.text for v in SECRET_VALUES)
    # The e-mail is in the page title and in its section's title: each occurrence counts.
    assert doc.redacted == {"email": 2, "phone": 1, "ip": 1, "secret": 2}
    for value in SECRET_VALUES:
        assert value not in doc.text and value not in doc.title
        assert all(value not in s.title for s in doc.sections)
    assert doc.title == "Contact [EMAIL]"
    assert "v2.3.1 on 2023-06-01 listens on port 8000" in doc.text
    for s in doc.sections:
        assert doc.text[s.start : s.end] == s.text
    chunks = Chunker(size=60, overlap=10).split(doc)
    assert chunks
    for c in chunks:
        assert doc.text[c.start : c.end] == c.text
        assert not any(v in c.embedding_text() for v in SECRET_VALUES)
    # Turning redaction on changes what the index holds, so it re-indexes the document.
    assert doc.content_hash != plain.content_hash


def test_ray_stage_rows_carry_the_counts(tmp_path: Path) -> None:
    """The Ray engine's stages (run here without Ray): parse_file redacts, and its doc row reports the counts."""
    from ragline.ingest.stages import DOC, chunk_rows, list_files, parse_file

    (tmp_path / "ops.html").write_bytes(SECRET_PAGE)
    settings = load_settings(data_dir=tmp_path / "data")
    settings.parse.redact = True
    settings.chunk.unit = "chars"
    _, _, rows = list_files([tmp_path], settings.parse)
    parsed = parse_file(rows[0], parse=settings.parse, metadata={}, stored={})
    assert json.loads(parsed["redacted"]) == {"email": 2, "ip": 1, "phone": 1, "secret": 2}
    out = chunk_rows(parsed, chunk=settings.chunk, embedding=settings.embedding)
    doc_rows = [r for r in out if r["row"] == DOC]
    assert len(doc_rows) == 1 and json.loads(doc_rows[0]["redacted"])["secret"] == 2
    assert {r.keys().__len__() for r in out} == {len(out[0])}  # one schema for every row
    for r in out:
        assert not any(v in r["text"] for v in SECRET_VALUES)


@pytest.mark.slow
def test_ingest_reports_counts_and_stores_no_secret(tmp_path: Path) -> None:
    """The in-process engine with the bundled model and embedded Qdrant: payloads hold placeholders only."""
    from ragline.components import Components
    from ragline.ingest.local import ingest

    folder = tmp_path / "site"
    folder.mkdir()
    (folder / "ops.html").write_bytes(SECRET_PAGE)
    (folder / "plain.md").write_text("# Plain\n\nNothing private: version 2.3.1, port 8000.\n", encoding="utf-8")
    comp = Components(load_settings(data_dir=tmp_path / "data"))
    comp.settings.parse.redact = True
    try:
        report = ingest([folder], comp)
        assert report.documents == 2 and not report.skipped
        assert report.redacted == {"email": 2, "phone": 1, "ip": 1, "secret": 2}
        assert report.to_json()["redacted"] == {"email": 2, "ip": 1, "phone": 1, "secret": 2}
        payloads = [p for _, p in comp.store.points()]
        assert payloads
        # Every field that carries document text: ids and hashes are hex, and sources and the ingest root are
        # temporary paths, any of which may hold "555" by chance (the anchor, taken from the text, stays in).
        hashes = ("doc_id", "doc_hash", "origin", "source", "url")
        dump = json.dumps([{k: v for k, v in p.items() if k not in hashes} for p in payloads])
        for value in SECRET_VALUES:
            assert value not in dump
        assert "[EMAIL]" in dump and "[SECRET]" in dump
        # The question with the placeholder finds the redacted chunk: embeddings were made from redacted text.
        hits = comp.retriever.search("who to contact [EMAIL]", k=1)
        assert hits and "[EMAIL]" in (hits[0].chunk.title + hits[0].chunk.text)
    finally:
        comp.close()


def test_query_ref_hides_the_text_unless_verbatim() -> None:
    ref = query_ref("what is my password hunter2?")
    assert "hunter2" not in ref and "28 chars" in ref
    assert ref == query_ref("what is my password hunter2?")  # stable: lines of one query can be matched
    assert ref != query_ref("what is my password hunter3?")
    assert "hunter2" in query_ref("what is my password hunter2?", verbatim=True)
    assert set(KINDS) == {"secret", "email", "ip", "phone"}


def _crawl_folder(data_dir: Path) -> Path:
    out = data_dir / "crawl"
    store = PageStore(out, origin="https://docs.example.org/")
    for url in ("https://docs.example.org/a/one.html", "https://docs.example.org/a/two.html"):
        store.save(url, url, 200, {"content-type": "text/html"}, b"<h1>page</h1>")
    store.save("https://docs.example.org/b/three.html", "https://docs.example.org/b/three.html", 200, {}, b"<p>b</p>")
    store.commit(drop_unseen=False)
    return out


def test_forget_cached_removes_pages_and_report_mentions(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    out = _crawl_folder(data_dir)
    files_before = {p.name for p in out.rglob("*.html")}
    assert len(files_before) == 3
    (data_dir / "last-ingest.json").write_text(
        json.dumps(
            {
                "documents": 3,
                "skipped": [
                    {"source": "https://docs.example.org/a/broken.html", "reason": "empty"},
                    {"source": "https://docs.example.org/b/broken.html", "reason": "empty"},
                ],
            }
        )
    )

    assert forget_cached(data_dir, "https://docs.example.org/a/") == 3  # two pages, one report line

    assert [e.url for e in read_manifest(out)] == ["https://docs.example.org/b/three.html"]
    assert {p.name for p in out.rglob("*.html")} == {"three.html"}
    report = json.loads((data_dir / "last-ingest.json").read_text())
    assert report["skipped"] == [{"source": "https://docs.example.org/b/broken.html", "reason": "empty"}]
    assert report["documents"] == 3
    assert forget_cached(data_dir, "https://docs.example.org/a/") == 0  # nothing left to forget
    with pytest.raises(ValueError):
        forget_cached(data_dir, "")


def test_forget_cached_never_deletes_outside_the_crawl_folder(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    out = _crawl_folder(data_dir)
    outside = tmp_path / "keep.html"
    outside.write_text("mine")
    lines = (out / "manifest.jsonl").read_text().splitlines()
    entry = json.loads(lines[0])
    entry["file"] = "../../keep.html"
    (out / "manifest.jsonl").write_text("\n".join([json.dumps(entry), *lines[1:]]) + "\n")
    assert forget_cached(data_dir, entry["url"]) == 1
    assert outside.read_text() == "mine"


def test_forget_cached_on_an_empty_data_dir(tmp_path: Path) -> None:
    assert forget_cached(tmp_path / "nothing-here", "https://x.example/") == 0
