"""Retrieval metrics on cases small enough to check by hand."""

from __future__ import annotations

import math

import pytest

from ragline.evaluate import metrics as m
from ragline.evaluate.datasets import Question, QuestionSet, page_key
from ragline.evaluate.runner import score

REL = {"b": 1}


def test_documents_keep_each_at_its_best_rank() -> None:
    assert m.documents(["a", "b", "a", "c", "b"]) == ["a", "b", "c"]


@pytest.mark.parametrize(("k", "want"), [(1, 0.0), (2, 1.0), (5, 1.0)])
def test_hit_at_k(k: int, want: float) -> None:
    assert m.hit_at_k(["a", "b", "c"], REL, k) == want


def test_hit_ignores_zero_grades() -> None:
    assert m.hit_at_k(["a"], {"a": 0}, 1) == 0.0


def test_reciprocal_rank() -> None:
    assert m.reciprocal_rank(["a", "b", "c"], REL) == 0.5
    assert m.reciprocal_rank(["a", "c"], REL) == 0.0
    assert m.reciprocal_rank(["a", "c", "b"], REL, k=2) == 0.0  # beyond the cutoff


def test_recall_at_k() -> None:
    rel = {"a": 1, "b": 2, "z": 1}
    assert m.recall_at_k(["a", "x", "b"], rel, 1) == pytest.approx(1 / 3)
    assert m.recall_at_k(["a", "x", "b"], rel, 3) == pytest.approx(2 / 3)
    assert m.recall_at_k(["a", "a", "a"], rel, 3) == pytest.approx(1 / 3)  # a repeated key counts once
    assert m.recall_at_k(["a"], {}, 1) == 0.0


def test_ndcg_binary_by_hand() -> None:
    # relevant at ranks 2 and 3; ideal has them at 1 and 2
    dcg = 1 / math.log2(3) + 1 / math.log2(4)
    idcg = 1 / math.log2(2) + 1 / math.log2(3)
    assert m.ndcg_at_k(["x", "a", "b"], {"a": 1, "b": 1}, 10) == pytest.approx(dcg / idcg)


def test_ndcg_graded_and_cut() -> None:
    rel = {"a": 2, "b": 1}
    assert m.ndcg_at_k(["a", "b"], rel, 10) == pytest.approx(1.0)
    swapped = (1 / 1 + 2 / math.log2(3)) / (2 / 1 + 1 / math.log2(3))
    assert m.ndcg_at_k(["b", "a"], rel, 10) == pytest.approx(swapped)
    assert m.ndcg_at_k(["x", "a"], rel, 1) == 0.0


def test_ndcg_counts_a_document_once_at_its_best_chunk() -> None:
    # chunks of a, a, b -> documents a, b: a perfect ranking
    assert m.ndcg_at_k(["a", "a", "b"], {"a": 1, "b": 1}, 2) == pytest.approx(1.0)


def test_score_chunks_unit_counts_chunks() -> None:
    qs = QuestionSet("t", [Question("1", "q", {"p2": 1}), Question("2", "q", {"p9": 1})], page_key, "chunks")
    got = score(qs, [["p1", "p1", "p2"], ["p1"]], [1, 2, 3])
    assert got["hit@1"] == 0.0 and got["hit@2"] == 0.0 and got["hit@3"] == 0.5
    assert got["mrr"] == pytest.approx((1 / 3) / 2, abs=1e-4)  # rank 3 among chunks
    assert got["ndcg@10"] == pytest.approx((1 / math.log2(3)) / 2, abs=1e-4)  # rank 2 among documents


def test_score_documents_unit_collapses_chunks() -> None:
    qs = QuestionSet("t", [Question("1", "q", {"p2": 1})], page_key, "documents")
    got = score(qs, [["p1", "p1", "p2"]], [1, 2])
    assert got["hit@2"] == 1.0 and got["mrr"] == 0.5 and got["recall@1"] == 0.0 and got["recall@2"] == 1.0


def test_answer_scoring_reads_markers_from_prose_and_judges_code_whole() -> None:
    from ragline.evaluate.answers import citation_validity, cited, repeated_sentences, sentences

    answer = "Stream the output of a chain [1]:\n\n```\nfor c in chain.stream(x[2]):\n    print(c)\n    print(c)\n```"
    assert cited(answer) == [1] and citation_validity(answer, 1) == 1.0
    claims = sentences(answer)
    assert claims == [
        "Stream the output of a chain [1]:",
        "```\nfor c in chain.stream(x[2]):\n    print(c)\n    print(c)\n```",
    ]
    assert repeated_sentences(answer) == 0  # two print lines are code, not a repeated claim
    assert repeated_sentences("It runs on CPUs [1]. It runs on CPUs [1].") == 1
