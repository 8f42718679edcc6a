"""records.py: ids, payload round trips and the answer's JSON, the shapes every stage passes on."""

from __future__ import annotations

from ragline.records import Answer, Chunk, Citation, Document, Hit, Section, Usage, doc_id_for


def _doc(source: str = "https://docs.example/a.html", tenant: str | None = None) -> Document:
    metadata = {"tenant": tenant} if tenant else {}
    sections = [Section("Intro", "Alpha beta.", anchor="intro"), Section("Use", "Gamma delta.", anchor="use")]
    return Document.from_sections(source, "A page", "html", sections, metadata=metadata)


def test_sections_keep_offsets_into_the_document_text() -> None:
    doc = _doc()
    for section in doc.sections:
        assert doc.text[section.start : section.start + len(section.text)] == section.text


def test_ids_are_deterministic_and_differ_by_source_and_tenant() -> None:
    assert _doc().doc_id == _doc().doc_id == doc_id_for("https://docs.example/a.html")
    assert _doc().doc_id != _doc("https://docs.example/b.html").doc_id
    assert _doc(tenant="acme").doc_id != _doc(tenant="globex").doc_id != _doc().doc_id


def test_content_hash_follows_the_text() -> None:
    edited = Document.from_sections(
        "https://docs.example/a.html", "A page", "html", [Section("Intro", "Alpha beta, edited.", anchor="intro")]
    )
    assert _doc().content_hash == _doc().content_hash != edited.content_hash


def test_a_chunk_survives_its_payload_and_links_to_its_anchor() -> None:
    chunk = Chunk("d1", "https://docs.example/a.html", "A page", "Use", "use", "Gamma delta.", 12, 24, 1,
                  metadata={"tenant": "acme"}, origin="https://docs.example/")  # fmt: skip
    back = Chunk.from_payload(chunk.payload())
    assert back == chunk
    assert back.id == chunk.id
    assert chunk.url == "https://docs.example/a.html#use"
    assert chunk.embedding_text() == "A page - Use\nGamma delta."
    other_tenant = Chunk.from_payload({**chunk.payload(), "metadata": {"tenant": "globex"}})
    assert other_tenant.id != chunk.id


def test_the_answer_json_carries_citations_and_usage() -> None:
    chunk = Chunk("d1", "https://docs.example/a.html", "A page", "Use", "use", "Gamma delta.", 12, 24, 1)
    answer = Answer("q?", "Gamma [1].", [Citation(1, Hit(chunk, 0.5))], "none (extractive)", {"total": 0.1}, Usage())
    out = answer.to_json()
    assert out["answer"] == "Gamma [1]."
    assert out["citations"][0]["n"] == 1
    assert out["citations"][0]["source"] == "https://docs.example/a.html#use"
    assert answer.document_ids == ["d1"]
