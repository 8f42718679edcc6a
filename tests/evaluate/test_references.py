"""Answers scored against reference answers: token F1, key points, refusals right and wrong."""

from __future__ import annotations

import pytest

from ragline.evaluate.references import key_point_recall, reference_scores, summarise_references, token_f1

REFERENCE = "Pass a `ScalingConfig` with `use_gpu=True` to the `TorchTrainer`; each worker then gets one GPU."
POINTS = ["ScalingConfig(use_gpu=True) on the TorchTrainer", "one GPU per worker"]


def test_token_f1_rewards_the_words_of_the_reference() -> None:
    good = "Set use_gpu=True in the ScalingConfig you pass to TorchTrainer [1]."
    assert token_f1(good, REFERENCE) > token_f1("Ray Serve deploys models behind HTTP.", REFERENCE)
    assert token_f1(REFERENCE, REFERENCE) == pytest.approx(1.0)
    assert token_f1("", REFERENCE) == 0.0
    assert token_f1("[1] [2]", "") == 0.0  # markers are not words


def test_key_points_count_names_and_rare_words() -> None:
    full = "Use ScalingConfig(use_gpu=True) on the TorchTrainer: one GPU per worker."
    half = "Use ScalingConfig(use_gpu=True) on the TorchTrainer."
    assert key_point_recall(full, POINTS) == pytest.approx(1.0)
    assert 0.4 < (key_point_recall(half, POINTS) or 0) < 0.9
    assert key_point_recall("Nothing relevant.", POINTS) == 0.0
    assert key_point_recall(full, []) is None


def test_refusals_right_and_wrong() -> None:
    refusal = "The documentation provided does not answer this question."
    open_ref = "The documentation does not answer this: it never mentions Datadog."
    assert reference_scores(refusal, REFERENCE)["wrong_refusal"]
    assert not reference_scores(refusal, open_ref)["missed_refusal"]
    answered = reference_scores("Install the Datadog agent on every node [1].", open_ref)
    assert answered["missed_refusal"] and answered["unanswerable"] and not answered["refused"]
    rows = [{"reference_scores": reference_scores(refusal, REFERENCE)}, {"reference_scores": answered}, {}]
    summary = summarise_references(rows)
    assert summary["wrong_refusals"] == 1.0 and summary["missed_refusals"] == 1.0 and summary["unanswerable"] == 1.0


def test_a_refusal_followed_by_the_closest_passages_counts_as_a_refusal() -> None:
    from ragline.answer.answerer import hedged

    open_ref = "The documentation does not answer this: it never mentions Datadog."
    passages = " ".join(["Set RAGLINE_QDRANT_URL to the server's address [1]."] * 12)  # long: not a bare refusal
    scores = reference_scores(hedged(passages), open_ref)
    assert scores["hedged"] and scores["refused"] and not scores["missed_refusal"]
    wrong = reference_scores(hedged(passages), REFERENCE)
    assert wrong["wrong_refusal"]
    assert not reference_scores(passages, REFERENCE)["hedged"]
