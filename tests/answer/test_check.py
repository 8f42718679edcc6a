"""The grounding check: what passes, and each way an answer fails it."""

from __future__ import annotations

from ragline.answer.check import Checker, add_citations, check_answer, claims, markers, names
from ragline.answer.evidence import select
from ragline.embed.base import Embedder

from .conftest import hit
from .test_evidence import QDRANT

QUESTION = "How do I use a Qdrant server instead of the embedded engine?"


def _evidence(embedder: Embedder):  # type: ignore[no-untyped-def]
    return select(QUESTION, [hit(QDRANT, "https://d/configuration")], embedder)


def test_markers_claims_and_names_are_read_from_the_text() -> None:
    assert markers("a [2]. b [1, 3]. c [2]") == [2, 1, 3]
    assert claims("Set the URL [1].\n\n```\nexport X=1\n```\n\nSee [1]:") == ["Set the URL [1]."]
    assert {"ragline_qdrant_url", "client.connect", "bind", "runnableparallel"} <= names(
        "Set `RAGLINE_QDRANT_URL`, call client.connect(), use @bind or RunnableParallel."
    )


def test_a_grounded_answer_passes(embedder: Embedder) -> None:
    answer = "To use a Qdrant server instead, set its URL and, if it has one, its API key [1]."
    check = check_answer(answer, _evidence(embedder), embedder)
    assert check.passed, check.reason
    assert check.citation_validity == 1.0 and check.cites_any and check.supported == check.sentences == 1


def test_an_answer_without_citations_fails(embedder: Embedder) -> None:
    check = check_answer("Set the Qdrant URL to use a server.", _evidence(embedder), embedder)
    assert not check.passed and check.reason == "the answer cites no block" and not check.cites_any


def test_a_citation_to_a_block_not_given_fails(embedder: Embedder) -> None:
    check = check_answer("Set its URL [3].", _evidence(embedder), embedder)
    assert not check.passed and check.citation_validity == 0.0 and "not given" in (check.reason or "")


def test_an_invented_name_fails(embedder: Embedder) -> None:
    answer = "To use a Qdrant server, decorate the engine with @qdrant.remote and set its URL [1]."
    check = check_answer(answer, _evidence(embedder), embedder)
    assert not check.passed and "qdrant.remote" in check.unknown_names


def test_an_unsupported_sentence_fails(embedder: Embedder) -> None:
    answer = "The Qdrant server can be used to run a machine-readable object executed on the GPU [1]."
    check = check_answer(answer, _evidence(embedder), embedder)
    assert not check.passed and check.supported == 0 and "not supported" in (check.reason or "")


def test_a_repeated_sentence_fails(embedder: Embedder) -> None:
    s = "To use a Qdrant server instead, set its URL [1]. "
    check = check_answer(s + s, _evidence(embedder), embedder)
    assert not check.passed and check.repeated == 1


def test_the_check_serialises() -> None:
    check = check_answer("Set its URL [1].", select(QUESTION, [hit(QDRANT)], None), None)
    data = check.to_json()
    assert set(data) >= {"passed", "citation_validity", "cites_any", "sentences", "supported", "reason"}


def test_code_is_neither_a_citation_nor_a_sentence(embedder: Embedder) -> None:
    answer = (
        "To use a Qdrant server instead, set its URL and, if it has one, its API key [1]:\n\n"
        "```\nexport RAGLINE_QDRANT_URL=http://qdrant.internal:6333\nx = rows[3]\n```"
    )
    assert markers(answer) == [1]  # rows[3] is code
    check = check_answer(answer, _evidence(embedder), embedder)
    assert check.citation_validity == 1.0 and check.sentences == 1


# A capable model's answer is held to what matters: no invented names, most sentences supported by some block.
def _lenient(answer: str, embedder: Embedder):  # type: ignore[no-untyped-def]
    return Checker(embedder, lenient=True)(answer, _evidence(embedder))


def test_a_capable_models_uncited_but_supported_answer_passes_with_a_note(embedder: Embedder) -> None:
    answer = "To use a Qdrant server instead, set its URL and, if it has one, its API key."
    strict = check_answer(answer, _evidence(embedder), embedder)
    lenient = _lenient(answer, embedder)
    assert not strict.passed and lenient.passed, lenient.reason
    assert lenient.notes == ["the answer cites no block"] and lenient.supported == 1


def test_a_capable_models_invented_name_still_fails(embedder: Embedder) -> None:
    check = _lenient("To use a Qdrant server, call `qdrant.remote_connect()` with its URL [1].", embedder)
    assert not check.passed and "qdrant.remote_connect" in check.unknown_names


def test_a_capable_models_unsupported_answer_fails(embedder: Embedder) -> None:
    answer = "The GPU kernel compiles shaders ahead of time. Each shader is cached on the driver's disk."
    check = _lenient(answer, embedder)
    assert not check.passed and check.supported == 0 and "not supported" in (check.reason or "")


def test_a_refusal_passes_as_a_refusal(embedder: Embedder) -> None:
    check = _lenient("The documentation provided does not answer this question.", embedder)
    assert check.passed and check.refused
    # A refusal followed by an answer is an answer, checked as one.
    long = "The documentation does not say much, but " + "the engine runs shaders on the GPU and caches them. " * 5
    assert not _lenient(long, embedder).refused


def test_example_code_may_name_its_own_variables(embedder: Embedder) -> None:
    answer = "To use a Qdrant server instead, set its URL [1].\n\n```\nmy_url = 'http://qdrant.internal:6333'\n```"
    assert _lenient(answer, embedder).passed
    assert not check_answer(answer, _evidence(embedder), embedder).passed  # the strict check reads code names


def test_citations_are_added_to_supported_sentences_only(embedder: Embedder) -> None:
    evidence = _evidence(embedder)
    answer = (
        "To use a Qdrant server instead, set its URL and its API key. The moon is made of cheese.\n\n"
        "```\nexport RAGLINE_QDRANT_URL=http://qdrant.internal:6333\n```\n\nAlready cited here [1]."
    )
    cited = add_citations(answer, evidence, embedder)
    assert "set its URL and its API key [1]." in cited
    assert "The moon is made of cheese." in cited and "cheese [1]" not in cited
    assert "```\nexport RAGLINE_QDRANT_URL=http://qdrant.internal:6333\n```" in cited  # code untouched
    assert cited.endswith("Already cited here [1].")


def test_a_capable_models_commands_and_placeholders_are_read_word_by_word(embedder: Embedder) -> None:
    ok = "To use a Qdrant server instead, run `export RAGLINE_QDRANT_URL=<url>` with its URL [1]."
    assert _lenient(ok, embedder).passed, _lenient(ok, embedder).reason
    invented = "To use a Qdrant server instead, run `ragline connect --qdrant_remote_url` with its URL [1]."
    check = _lenient(invented, embedder)
    assert not check.passed and "qdrant_remote_url" in check.unknown_names


def test_a_capable_models_prose_may_name_its_examples_own_names(embedder: Embedder) -> None:
    # Names the answer's own example defines, placeholders and literals are not APIs the documentation lacks.
    answer = (
        "To use a Qdrant server instead, set its URL in `qdrant_url` and pass it as `your_api_key` [1]. "
        "Set `verify` to `False` when the server has no certificate.\n\n"
        "```\nqdrant_url = 'http://qdrant.internal:6333'\n```"
    )
    check = _lenient(answer, embedder)
    assert check.unknown_names == ["verify"]  # a name neither the blocks nor the example have still fails
    assert _lenient(answer.replace("Set `verify` to", "Set it to"), embedder).passed
