"""Splitting blocks into units and choosing the ones that bear on the question."""

from __future__ import annotations

from ragline.answer.evidence import code_groups, looks_like_code, looks_like_diagram, select, split_units, terms
from ragline.embed.base import Embedder

from .conftest import hit

QDRANT = (
    "By default the index lives in Qdrant's embedded engine inside the process, which needs no server.\n"
    "To use a Qdrant server instead, set its URL and, if it has one, its API key:\n"
    "export RAGLINE_QDRANT_URL=http://qdrant.internal:6333\n"
    "export RAGLINE_QDRANT_API_KEY=...\n"
    "The collection name is ragline unless a setting says otherwise.\n"
)


def test_sentences_split_but_code_stays_whole() -> None:
    units = split_units(QDRANT)
    assert [u.code for u in units] == [False, False, True, False]
    assert units[2].text == "export RAGLINE_QDRANT_URL=http://qdrant.internal:6333\nexport RAGLINE_QDRANT_API_KEY=..."
    assert [u.position for u in units] == [0, 1, 2, 3]
    two = split_units("It runs on CPUs. It also runs on GPUs, e.g. an A100. See the guide.")
    assert [u.text for u in two] == ["It runs on CPUs.", "It also runs on GPUs, e.g. an A100.", "See the guide."]


def test_each_line_is_its_own_paragraph_and_comments_stay_with_code() -> None:
    units = split_units("Fallbacks\nHandle errors gracefully.\n# set up the models\nllm = a.with_fallbacks([b])\n")
    assert [(u.text, u.code) for u in units] == [
        ("Fallbacks", False),
        ("Handle errors gracefully.", False),
        ("# set up the models\nllm = a.with_fallbacks([b])", True),
    ]


def test_prose_and_code_lines_are_told_apart() -> None:
    assert looks_like_code("from ragline import Index")
    assert looks_like_code("$ ragline ingest docs/")
    assert looks_like_code("x = compute(y)")
    assert not looks_like_code("This page explains how the index is kept current.")
    assert not looks_like_code("Python is used in examples, and so is the shell.")


def test_a_long_listing_is_split_into_its_steps_never_inside_brackets() -> None:
    lines = ["import a", "import b", "", "# first step", "x = call(", "    1,", "", "    2,", ")"]
    lines += ["# second step", *[f"y{i} = {i}" for i in range(8)]]
    groups = code_groups(lines)
    assert groups[0] == "import a\nimport b"
    assert groups[1] == "# first step\nx = call(\n    1,\n\n    2,\n)"
    assert groups[2].startswith("# second step") and groups[2].count("\n") == 8
    assert code_groups(["a = 1", "b = 2"]) == ["a = 1\nb = 2"]  # short listings stay whole


def test_diagrams_are_not_taken_for_code_examples() -> None:
    assert looks_like_diagram("Ingress -> Retriever ------+\n                           |\nGenerator <---+")
    assert not looks_like_diagram("def f(x) -> int:\n    return x + 1\n")


def test_identifiers_count_as_words() -> None:
    assert {"with_fallbacks", "fallbacks", "runnable", "parallel"} <= terms("x.with_fallbacks RunnableParallel")


def test_the_evidence_keeps_what_answers_and_numbers_blocks_in_retrieval_order(embedder: Embedder) -> None:
    hits = [
        hit("Ray clusters run on Kubernetes with KubeRay. The head node schedules work.", "https://d/cluster"),
        hit(QDRANT, "https://d/configuration", "using-a-qdrant-server"),
        hit("Bananas are yellow. They grow in bunches.", "https://d/fruit"),
    ]
    evidence = select("How do I use a Qdrant server instead of the embedded engine?", hits, embedder)
    sources = [b.hit.chunk.source for b in evidence.blocks]
    assert "https://d/configuration" in sources and sources == sorted(sources, key=[h.chunk.source for h in hits].index)
    config = evidence.blocks[sources.index("https://d/configuration")]
    top = sorted(config.units, key=lambda u: -u.score)[:2]
    assert any("Qdrant server instead" in u.text for u in top)
    assert all(u.vector is not None for u in config.all_units)  # kept for the check
    assert not any("Bananas" in u.text for b in evidence.blocks for u in b.units)


def test_a_unit_that_quotes_the_question_ranks_below_one_that_answers(embedder: Embedder) -> None:
    question = "How do I add fallbacks to a runnable?"
    text = (
        f'For example, a user might ask "{question}"\n'
        "Fallbacks are added with with_fallbacks, which takes the runnables to try in order.\n"
    )
    evidence = select(question, [hit(text)], embedder)
    ranked = sorted(evidence.blocks[0].all_units, key=lambda u: -u.score)
    assert ranked[0].text.startswith("Fallbacks are added")


def test_without_an_embedder_words_alone_choose() -> None:
    evidence = select("How do I set the Qdrant URL?", [hit(QDRANT)], None)
    assert any("RAGLINE_QDRANT_URL" in u.text for u in evidence.blocks[0].units)


def test_abbreviations_do_not_end_a_sentence() -> None:
    text = "Pass a config, e.g. ScalingConfig(num_workers=2). The other one, i.e. Tune, waits. Ray vs. Spark is old."
    assert [u.text for u in split_units(text)] == [
        "Pass a config, e.g. ScalingConfig(num_workers=2).",
        "The other one, i.e. Tune, waits.",
        "Ray vs. Spark is old.",
    ]
