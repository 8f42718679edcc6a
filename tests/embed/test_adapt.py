"""Corpus adaptation: training pairs from stored chunks, and a real fine-tune of the bundled model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ragline.embed.adapt import AdaptOptions, adapt, heading, score_pairs, training_pairs
from ragline.errors import ConfigError

DOCS = Path(__file__).resolve().parents[2] / "docs"

SENTENCES = (
    "Ray Serve scales each deployment by adding replicas. "
    "Every replica holds its own copy of the model in memory. "
    "Autoscaling watches the queue length of every replica. "
    "Requests are routed to the replica with the shortest queue."
)


def payload(text: str, title: str = "Serving", section: str = "Scaling") -> dict[str, str]:
    return {"text": text, "title": title, "section": section}


def test_heading_is_page_and_section() -> None:
    assert heading(payload("x", "Serving", "Scaling")) == "Serving - Scaling"
    assert heading(payload("x", "Serving", "Serving")) == "Serving"
    assert heading(payload("x", "Serving", "")) == "Serving"
    assert heading(payload("x", "", "")) == ""


def test_pairs_are_heading_and_inverse_cloze() -> None:
    pairs = training_pairs([payload(SENTENCES)], seed=1)
    by_query = dict(pairs)
    assert by_query.pop("Serving - Scaling") == SENTENCES
    [(sentence, rest)] = by_query.items()
    assert sentence in SENTENCES and sentence.endswith(".")
    assert rest in (SENTENCES.replace(sentence, " "), SENTENCES)  # usually cut out of its passage


def test_short_chunks_and_chunks_of_few_sentences_give_fewer_pairs() -> None:
    assert training_pairs([payload("Too short to learn from.")]) == []
    two = "A first sentence that is long enough to count here. A second one, just as long as the first one."
    assert training_pairs([payload(two)]) == [("Serving - Scaling", two)]  # no cloze pair from two sentences
    assert training_pairs([payload(SENTENCES, title="", section="")])[0][0] != ""


def test_pairs_are_shuffled_reproducibly() -> None:
    rows = [payload(f"{SENTENCES} Page {i} says more.", title=f"Page {i}") for i in range(20)]
    assert training_pairs(rows, seed=3) == training_pairs(rows, seed=3)
    assert training_pairs(rows, seed=3) != training_pairs(rows, seed=4)


def test_options_refuse_nonsense() -> None:
    with pytest.raises(ConfigError):
        AdaptOptions(batch_size=1)
    with pytest.raises(ConfigError):
        AdaptOptions(held_out=0.9)


@pytest.mark.slow  # adapt() imports torch and sentence-transformers before it checks
def test_too_few_pairs_for_one_batch_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="one batch"):
        adapt("unused", [("q", "d")] * 3, tmp_path / "m", AdaptOptions(batch_size=8))


# ------------------------------------------------------------------ real training (the bundled model)


def ragline(*args: str, data_dir: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "RAGLINE_DATA_DIR": str(data_dir), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "ragline.cli", *args], capture_output=True, text=True, env=full_env, timeout=900
    )


@pytest.fixture(scope="module")
def indexed_docs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's own documentation, indexed with the bundled model."""
    data = tmp_path_factory.mktemp("data")
    r = ragline("ingest", str(DOCS), "--json", data_dir=data)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["index_chunks"] > 50
    return data


@pytest.mark.slow
def test_adapting_lowers_the_loss_on_its_pairs(indexed_docs: Path, tmp_path: Path) -> None:
    from sentence_transformers import SentenceTransformer

    from ragline.components import Components
    from ragline.config import load_settings
    from ragline.embed.models import bundled_minilm_dir

    comp = Components(load_settings(data_dir=indexed_docs))
    try:
        pairs = training_pairs(p for _, p in comp.store.points())[:48]
    finally:
        comp.close()
    assert len(pairs) == 48
    base = str(bundled_minilm_dir())
    options = AdaptOptions(epochs=3, batch_size=16, learning_rate=1e-4, held_out=0.0)
    report = adapt(base, pairs, tmp_path / "adapted", options)
    assert report.steps == 9 and report.pairs == 48 and report.held_out_pairs == 0
    before = score_pairs(SentenceTransformer(base, device="cpu"), pairs, 16)
    after = score_pairs(SentenceTransformer(str(tmp_path / "adapted"), device="cpu"), pairs, 16)
    assert before is not None and after is not None
    assert after.loss < before.loss
    assert 0.0 <= before.accuracy <= 1.0 and after.accuracy >= before.accuracy - 1 / 16


@pytest.mark.slow
def test_cli_adapts_then_the_index_is_rebuilt_with_the_new_model(indexed_docs: Path, tmp_path: Path) -> None:
    model = tmp_path / "minilm-docs"
    r = ragline("adapt", "--out", str(model), "--max-pairs", "120", "--batch", "16", "--json", data_dir=indexed_docs)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["pairs"] == 120 and report["held_out_pairs"] == 6 and report["steps"] == 7
    assert report["held_out_before"]["accuracy"] is not None and report["held_out_after"]["loss"] > 0
    assert (model / "config.json").is_file()

    from sentence_transformers import SentenceTransformer

    from ragline.embed.models import bundled_minilm_dir

    text = ["How do I keep the index current when pages change?"]
    old = SentenceTransformer(str(bundled_minilm_dir()), device="cpu").encode(text)
    new = SentenceTransformer(str(model), device="cpu").encode(text)
    assert new.shape == old.shape and not np.allclose(new, old, atol=1e-4)

    env = {"RAGLINE_EMBEDDING__MODEL": str(model)}
    refused = ragline("search", "incremental ingest", data_dir=indexed_docs, env=env)
    assert refused.returncode == 4 and "--recreate" in refused.stderr  # the index still holds the old model's vectors
    rebuilt = ragline("ingest", str(DOCS), "--recreate", "--json", data_dir=indexed_docs, env=env)
    assert rebuilt.returncode == 0, rebuilt.stderr
    found = ragline("search", "incremental ingest", "--json", data_dir=indexed_docs, env=env)
    assert found.returncode == 0, found.stderr
    assert json.loads(found.stdout)["hits"]


def test_cli_adapt_on_an_empty_index_says_so(tmp_path: Path) -> None:
    r = ragline("adapt", "--out", str(tmp_path / "m"), data_dir=tmp_path / "nothing")
    assert r.returncode == 4
    assert "ragline ingest" in r.stderr and "Traceback" not in r.stderr
