"""Prompt building: numbered blocks, token budgets, citation parsing (pure, no model)."""

from __future__ import annotations

import pytest

from ragline.errors import BadRequestError, ConfigError
from ragline.generate import SYSTEM_PROMPT, build_messages, cited_numbers
from ragline.records import Chunk, Hit


def words(text: str) -> int:
    """A tokenizer stand-in: one token per whitespace-separated word."""
    return len(text.split())


def prompt_tokens(messages: list[dict[str, str]]) -> int:
    return sum(words(m["content"]) for m in messages)


def hit(i: int, n_words: int = 50, *, section: str | None = None) -> Hit:
    text = " ".join(f"w{i}_{j}" for j in range(n_words))
    chunk = Chunk(
        doc_id=f"doc{i}",
        source=f"https://docs.example.org/page{i}.html",
        title=f"Page {i}",
        section=section if section is not None else f"Section {i}",
        anchor=f"anchor-{i}",
        text=text,
        start=0,
        end=len(text),
        index=0,
    )
    return Hit(chunk=chunk, score=1.0 - i / 100)


QUESTION = "How do I scale a deployment?"
MAX_ANSWER = 100
MARGIN = 32  # build_messages' default


def test_all_blocks_fit_numbered_in_order() -> None:
    hits = [hit(1), hit(2), hit(3)]
    messages, used = build_messages(
        QUESTION, hits, count_tokens=words, context_window=4096, max_answer_tokens=MAX_ANSWER
    )
    assert [m["role"] for m in messages] == ["system", "user"]
    assert used == hits
    user = messages[1]["content"]
    assert "[1] Page 1 — Section 1 (https://docs.example.org/page1.html#anchor-1)\nw1_0 w1_1" in user
    assert "[3] Page 3 — Section 3 (https://docs.example.org/page3.html#anchor-3)" in user
    assert user.index("[1] Page 1") < user.index("[2] Page 2") < user.index("[3] Page 3")
    assert user.rstrip().endswith(f"Question: {QUESTION}")


def test_blocks_can_leave_their_urls_out() -> None:
    hits = [hit(1), hit(2)]
    with_urls, _ = build_messages(QUESTION, hits, count_tokens=words, context_window=4096, max_answer_tokens=0)
    bare, used = build_messages(
        QUESTION, hits, count_tokens=words, context_window=4096, max_answer_tokens=0, urls=False
    )
    assert used == hits
    user = bare[1]["content"]
    assert '[1] from "Page 1 — Section 1":\nw1_0 w1_1' in user and '[2] from "Page 2 — Section 2":\nw2_0' in user
    assert "https://" not in user
    assert len(user) < len(with_urls[1]["content"]) - 60  # two URLs of 45 characters gone
    # A first block cut to fit has no URL either.
    tight, _ = build_messages(
        QUESTION, [hit(1, 400)], count_tokens=words, context_window=300, max_answer_tokens=64, urls=False
    )
    assert '[1] from "Page 1 — Section 1":\n' in tight[1]["content"] and "https://" not in tight[1]["content"]


def test_blocks_dropped_from_the_end_when_over_budget() -> None:
    hits = [hit(1), hit(2), hit(3)]
    two, _ = build_messages(QUESTION, hits[:2], count_tokens=words, context_window=10_000, max_answer_tokens=0)
    exact = prompt_tokens(two) + MAX_ANSWER + MARGIN  # a window that holds exactly two blocks

    messages, used = build_messages(
        QUESTION, hits, count_tokens=words, context_window=exact, max_answer_tokens=MAX_ANSWER
    )
    assert used == hits[:2]
    assert "[2] Page 2" in messages[1]["content"]
    assert "[3]" not in messages[1]["content"] and "w3_0" not in messages[1]["content"]
    assert prompt_tokens(messages) + MAX_ANSWER + MARGIN <= exact

    messages, used = build_messages(
        QUESTION, hits, count_tokens=words, context_window=exact - 1, max_answer_tokens=MAX_ANSWER
    )
    assert used == hits[:1]
    assert "[2]" not in messages[1]["content"]


def test_a_later_block_is_not_skipped_to_fit_a_smaller_one() -> None:
    # Order is relevance: block 3 must not be used in place of block 2 even though it fits.
    hits = [hit(1, 40), hit(2, 400), hit(3, 5)]
    one, _ = build_messages(QUESTION, hits[:1], count_tokens=words, context_window=10_000, max_answer_tokens=0)
    window = prompt_tokens(one) + 50 + MAX_ANSWER + MARGIN
    messages, used = build_messages(
        QUESTION, hits, count_tokens=words, context_window=window, max_answer_tokens=MAX_ANSWER
    )
    assert used == hits[:1]
    assert "w3_0" not in messages[1]["content"]


def test_single_huge_block_is_truncated() -> None:
    huge = hit(1, 10_000)
    window = 600
    messages, used = build_messages(
        QUESTION, [huge, hit(2)], count_tokens=words, context_window=window, max_answer_tokens=MAX_ANSWER
    )
    assert used == [huge]
    user = messages[1]["content"]
    assert "[1] Page 1 — Section 1" in user and "w1_0 w1_1 w1_2" in user
    assert "w1_9999" not in user and "[2]" not in user
    assert "…" in user
    total = prompt_tokens(messages)
    assert total + MAX_ANSWER + MARGIN <= window
    assert total + MAX_ANSWER + MARGIN >= window - 5  # filled, not just a stub


def test_no_hits_says_so() -> None:
    messages, used = build_messages(QUESTION, [], count_tokens=words, context_window=4096, max_answer_tokens=64)
    assert used == []
    assert "no context blocks" in messages[1]["content"]


def test_section_equal_to_title_is_not_repeated() -> None:
    h = hit(1, section="Page 1")
    messages, _ = build_messages(QUESTION, [h], count_tokens=words, context_window=4096, max_answer_tokens=64)
    assert "[1] Page 1 (https://docs.example.org/page1.html#anchor-1)" in messages[1]["content"]


def test_system_message_sets_the_rules() -> None:
    messages, _ = build_messages(QUESTION, [hit(1)], count_tokens=words, context_window=4096, max_answer_tokens=64)
    system = messages[0]["content"]
    assert system == SYSTEM_PROMPT
    assert "[1]" in system and "cite" in system.lower()
    assert "does not contain the answer" in system
    assert "not instructions" in system


def test_window_too_small_for_the_answer_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="max_tokens"):
        build_messages(QUESTION, [hit(1)], count_tokens=words, context_window=256, max_answer_tokens=256)


def test_question_longer_than_the_window_is_a_bad_request() -> None:
    with pytest.raises(BadRequestError, match="too long"):
        build_messages("why " * 1000, [hit(1)], count_tokens=words, context_window=512, max_answer_tokens=64)


@pytest.mark.parametrize(
    ("answer", "n_blocks", "expected"),
    [
        ("Use replicas [1].", 3, [1]),
        ("Scale out [2, 3] and autoscale [1].", 3, [2, 3, 1]),
        ("Both [1][2], again [2].", 2, [1, 2]),
        ("Made up [4] and [0], real [ 2 ].", 3, [2]),
        ("No citations here; arr[7] is code.", 3, []),
        ("", 3, []),
    ],
)
def test_cited_numbers(answer: str, n_blocks: int, expected: list[int]) -> None:
    assert cited_numbers(answer, n_blocks) == expected
