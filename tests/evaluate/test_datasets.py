"""Question formats, URL normalisation, method specs: small files written here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ragline.config import RetrievalSettings
from ragline.errors import BadRequestError, SourceError
from ragline.evaluate.datasets import (
    beir_documents,
    beir_key,
    load_answer_questions,
    load_beir_questions,
    load_page_questions,
    normalise_url,
)
from ragline.evaluate.runner import parse_method
from ragline.records import Chunk


@pytest.mark.parametrize(
    ("url", "want"),
    [
        ("https://Docs.Ray.io/en/master/serve/index.html#anchor", "https://docs.ray.io/en/master/serve"),
        ("https://docs.ray.io/en/master/serve/", "https://docs.ray.io/en/master/serve"),
        ("https://docs.ray.io:443/a.html", "https://docs.ray.io/a.html"),
        ("HTTP://x.io/a.html?v=1#top", "http://x.io/a.html?v=1"),
        ("/home/u/notes/a.md#part", "/home/u/notes/a.md"),
    ],
)
def test_normalise_url(url: str, want: str) -> None:
    assert normalise_url(url) == want


def test_page_questions(tmp_path: Path) -> None:
    f = tmp_path / "q.jsonl"
    f.write_text(json.dumps({"question": " How? ", "source": "https://x.io/a.html#b"}) + "\n\n")
    qs = load_page_questions(f)
    assert qs.unit == "chunks" and len(qs.questions) == 1
    q = qs.questions[0]
    assert (q.qid, q.text, q.relevant) == ("1", "How?", {"https://x.io/a.html": 1})


def test_page_questions_need_a_source(tmp_path: Path) -> None:
    f = tmp_path / "q.jsonl"
    f.write_text(json.dumps({"question": "How?"}) + "\n")
    with pytest.raises(SourceError, match="source"):
        load_page_questions(f)


def test_beir_questions_keep_judged_queries_only(tmp_path: Path) -> None:
    (tmp_path / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": i, "text": f"claim {i}"}) + "\n" for i in ("1", "2", "3"))
    )
    (tmp_path / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\n1\td1\t1\n1\td2\t2\n3\td9\t0\n")
    qs = load_beir_questions(tmp_path / "queries.jsonl", tmp_path / "qrels.tsv")
    assert [q.qid for q in qs.questions] == ["1"]
    assert qs.questions[0].relevant == {"d1": 1, "d2": 2}
    assert qs.unit == "documents"


def test_beir_documents_and_keys(tmp_path: Path) -> None:
    (tmp_path / "corpus.jsonl").write_text(
        json.dumps({"_id": "7", "title": "A title", "text": "Body."})
        + "\n"
        + json.dumps({"_id": "8", "text": ""})
        + "\n"
    )
    [doc] = list(beir_documents(tmp_path / "corpus.jsonl", "sf"))
    assert (doc.source, doc.title, doc.metadata) == ("beir://sf/7", "A title", {"beir_id": "7"})
    assert doc.sections[0].title == "A title" and doc.text == "Body."
    chunk = Chunk(doc.doc_id, doc.source, doc.title, "A title", None, "Body.", 0, 5, 0, metadata=doc.metadata)
    assert beir_key(chunk) == "7"


def test_answer_questions_take_references_by_id_or_text(tmp_path: Path) -> None:
    (tmp_path / "q.jsonl").write_text(
        json.dumps({"id": "a", "question": "One?"}) + "\n" + json.dumps({"question": "Two?", "source": "https://x.io/"})
    )
    (tmp_path / "r.jsonl").write_text(
        json.dumps({"id": "a", "reference": "ref one"}) + "\n" + json.dumps({"question": "Two?", "answer": "ref two"})
    )
    qs = load_answer_questions(tmp_path / "q.jsonl", tmp_path / "r.jsonl")
    assert [(q.qid, q.reference) for q in qs] == [("a", "ref one"), ("2", "ref two")]
    assert qs[1].relevant == {"https://x.io": 1}


def test_parse_method() -> None:
    base = RetrievalSettings(rerank=["page"])
    m = parse_method("hybrid+title:0.3+rerank@dense_weight=2@max_per_page=none", base)
    assert m.settings.mode == "hybrid" and m.settings.rerank == ["title:0.3", "page"]
    assert m.settings.dense_weight == 2.0 and m.settings.max_per_page is None
    assert parse_method("dense", base).settings.rerank == []
    # unset stages: `rerank` leaves the choice to the index, `default` is the configuration as it is
    unset = RetrievalSettings()
    assert parse_method("hybrid+rerank", unset).settings.rerank is None
    assert parse_method("hybrid+title+rerank", unset).settings.rerank == ["title"]
    assert parse_method("hybrid", unset).settings.rerank == []
    assert parse_method("default", base).settings == base and parse_method("default", unset).label == "default"
    one_changed = parse_method("default@max_per_page=none", base).settings
    assert one_changed == base.model_copy(update={"max_per_page": None})
    for bad in ("magic", "dense@nosuch=1", "dense@k=0", "default@nosuch=1"):
        with pytest.raises(BadRequestError):
            parse_method(bad, base)
