"""Smoke runs of ``ragline eval retrieval`` and ``ragline eval answers`` on tiny data written here,
as a user runs them: real subprocesses, the bundled model, the embedded index and the embedded LLM."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

PAGES = {
    "install.md": "# Installing Widgetron\n\nRun `pip install widgetron` to install Widgetron on any machine.\n\n"
    "## Upgrading\n\nUpgrade Widgetron with `pip install -U widgetron` every spring.\n",
    "colours.md": "# Colours\n\nSet the WIDGET_COLOUR environment variable to choose the colour of widgets. "
    "Blue is the default colour.\n",
    "scaling.md": "# Scaling out\n\nWidgetron spreads work over many machines with the `--workers` flag; "
    "each worker takes one CPU core.\n",
}
URL = "https://widgetron.example/docs/{path_noext}.html"
QUESTIONS = [
    {"question": "How do I install widgetron?", "source": "https://widgetron.example/docs/install.html#installing"},
    {"question": "Which variable sets the colour of widgets?", "source": "https://WIDGETRON.example/docs/colours.html"},
    {"question": "How can I use several machines?", "source": "https://widgetron.example/docs/scaling.html"},
]


def ragline(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RAGLINE_DATA_DIR": str(data_dir)}
    return subprocess.run(
        [sys.executable, "-m", "ragline.cli", *args], capture_output=True, text=True, env=env, timeout=600
    )


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("eval")
    docs = root / "docs"
    docs.mkdir()
    for name, text in PAGES.items():
        (docs / name).write_text(text)
    (root / "q.jsonl").write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS))
    r = ragline("ingest", str(docs), "--url-template", URL, "--json", data_dir=root / "index")
    assert r.returncode == 0, r.stderr
    return root


def test_eval_retrieval_writes_three_reports(data: Path) -> None:
    out = data / "report"
    r = ragline(
        "eval",
        "retrieval",
        "--questions",
        str(data / "q.jsonl"),
        "--k",
        "1,3",
        "--methods",
        "dense,bm25,hybrid,hybrid+title@candidates=10",
        "--out",
        str(out),
        "--json",
        data_dir=data / "index",
    )
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert [m["method"] for m in report["methods"]] == ["dense", "bm25", "hybrid", "hybrid+title@candidates=10"]
    assert report["questions"] == 3 and report["unit"] == "chunks"
    for method in report["methods"]:
        assert set(method["metrics"]) == {"hit@1", "hit@3", "mrr", "ndcg@10", "recall@1", "recall@3"}
        assert method["metrics"]["hit@3"] == 1.0  # three pages: every page is within 3 chunks
    for method in report["methods"]:  # invariants of the metrics on any ranking
        m = method["metrics"]
        assert 0.0 <= m["hit@1"] <= m["mrr"] <= 1.0 and m["hit@1"] <= m["hit@3"]
    assert (out / "retrieval.json").is_file() and (out / "retrieval.png").stat().st_size > 1000
    table = (out / "retrieval.md").read_text()
    assert "| `hybrid` |" in table and "hit@1" in table


def test_eval_retrieval_beir_indexes_the_corpus(data: Path) -> None:
    corpus = data / "beir" / "corpus.jsonl"
    corpus.parent.mkdir()
    docs = [
        {"_id": "d1", "title": "Aspirin and headaches", "text": "Aspirin relieves tension headaches in adults."},
        {"_id": "d2", "title": "Vitamin C", "text": "Vitamin C does not prevent the common cold."},
    ]
    corpus.write_text("".join(json.dumps(d) + "\n" for d in docs))
    (data / "beir" / "queries.jsonl").write_text(
        json.dumps({"_id": "q1", "text": "Does vitamin C prevent colds?"})
        + "\n"
        + json.dumps({"_id": "q2", "text": "no judgements for this one"})
        + "\n"
    )
    (data / "beir" / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td2\t1\n")
    r = ragline(
        "eval",
        "retrieval",
        "--questions",
        str(data / "beir" / "queries.jsonl"),
        "--qrels",
        str(data / "beir" / "qrels.tsv"),
        "--corpus",
        str(corpus),
        "--k",
        "1",
        "--methods",
        "dense,bm25",
        "--out",
        str(data / "beir-report"),
        "--json",
        data_dir=data / "beir-index",
    )
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["questions"] == 1 and report["unit"] == "documents"
    assert all(m["metrics"]["ndcg@10"] == 1.0 for m in report["methods"])


def test_eval_rejects_a_bad_method(data: Path) -> None:
    r = ragline(
        "eval",
        "retrieval",
        "--questions",
        str(data / "q.jsonl"),
        "--methods",
        "magic",
        "--out",
        str(data / "bad"),
        data_dir=data / "index",
    )
    assert r.returncode == 2 and "magic" in r.stderr


def test_eval_answers_with_the_embedded_llm(data: Path) -> None:
    refs = data / "refs.jsonl"
    refs.write_text(json.dumps({"question": QUESTIONS[0]["question"], "reference": "pip install widgetron"}) + "\n")
    questions = data / "q2.jsonl"
    questions.write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS[:2]))
    out = data / "answers"
    r = ragline(
        "eval",
        "answers",
        "--questions",
        str(questions),
        "--references",
        str(refs),
        "--k",
        "2",
        "--modes",
        "extractive,generative",
        "--out",
        str(out),
        "--json",
        data_dir=data / "index",
    )
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["questions"] == 2 and report["groundedness_by"].startswith("embedding")
    # Per mode, side by side: the extractive answers cite and repeat nothing, and each row says its mode.
    assert set(report["modes"]) == {"extractive", "generative"}
    extractive = report["modes"]["extractive"]
    assert extractive["citation_validity"] == 1.0 and extractive["cites_any"] == 1.0
    assert extractive["answers_repeating"] == 0 and report["summary"] == extractive
    assert {"first_token_p50", "total_p50", "relevance", "words", "grounded_check"} <= set(extractive)
    assert [r["asked_mode"] for r in report["answers"]] == ["extractive"] * 2 + ["generative"] * 2
    assert {r["mode"] for r in report["answers"][2:]} <= {"generative"}
    report["answers"] = report["answers"][:2]
    for row in report["answers"]:
        assert row["answer"] and row["citations"]
        assert row["citation_validity"] in (0.0, 1.0) and 0.0 <= row["groundedness"] <= 1.0
    # The question with a reference is scored against it; no model grades answers unless a judge is named.
    assert "reference_scores" in report["answers"][0] and "reference_scores" not in report["answers"][1]
    assert report["answers"][0]["reference_scores"]["token_f1"] > 0 and "quality" not in report["answers"][0]
    s = report["summary"]
    assert {"citation_validity", "groundedness", "cites_any", "token_f1", "relevant_retrieved"} <= set(s)
    assert "quality" not in s and report["judge"] is None
    assert (out / "answers.json").is_file() and "groundedness" in (out / "answers.md").read_text()


def test_eval_answers_graded_by_a_separate_judge_endpoint(data: Path) -> None:
    from llm_server import llama_server

    refs = data / "refs-judge.jsonl"
    refs.write_text(json.dumps({"question": QUESTIONS[0]["question"], "reference": "pip install widgetron"}) + "\n")
    questions = data / "q-judge.jsonl"
    questions.write_text(json.dumps(QUESTIONS[0]) + "\n")
    with llama_server() as url:
        r = ragline(
            "eval",
            "answers",
            "--questions",
            str(questions),
            "--references",
            str(refs),
            "--modes",
            "extractive",
            "--judge-url",
            url,
            "--judge-model",
            "smollm2",
            "--out",
            str(data / "judged"),
            "--json",
            data_dir=data / "index",
        )
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["judge"] == "openai:smollm2"
    row = report["answers"][0]
    assert "quality" in row and (row["quality"] is None or 1 <= row["quality"] <= 5)
