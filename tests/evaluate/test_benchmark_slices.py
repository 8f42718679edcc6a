"""A tiny slice of each shared benchmark, end to end: the real loaders, the bundled model, the embedded index.

The full benchmarks are ``bench/eval.py ray`` and ``bench/eval.py scifact``; these only check the plumbing
on real data (skipped when ../shared/corpora is absent).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ragline.components import Components
from ragline.config import load_settings
from ragline.evaluate import benchmarks
from ragline.evaluate.datasets import read_jsonl
from ragline.evaluate.indexing import build_index
from ragline.evaluate.runner import evaluate

pytestmark = pytest.mark.slow


def _components(data: Path) -> Components:
    return Components(load_settings(data_dir=data))


def test_ray_slice(corpora: Path, tmp_path: Path) -> None:
    bench = benchmarks.ray(corpora)
    assert bench.questions.notes["questions"] == 213
    assert bench.questions.notes["counted"] + sum(bench.questions.notes["not_counted"].values()) == 213
    roots = [corpora / "ray-docs", *sorted((corpora / "ray-docs-supplement").iterdir())]
    picked, files = [], {}
    for q in bench.questions.questions:
        rel = q.extra["file"]
        path = next((r / rel for r in roots if (r / rel).is_file()), None)
        if path is not None and path.stat().st_size < 6_000 and rel not in files:
            picked.append(q)
            files[rel] = path
        if len(picked) == 4:
            break
    assert len(picked) == 4
    docs = tmp_path / "docs"
    for rel, path in files.items():
        (docs / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, docs / rel)
    bench.paths = [docs]
    bench.questions.questions = picked
    comp = _components(tmp_path / "data")
    try:
        report = build_index(bench, comp)
        assert report.documents == 4 and not report.skipped
        result = evaluate(
            bench.questions,
            ["dense", "hybrid+page@max_per_page=1"],
            comp.store,
            comp.embedder,
            comp.settings.retrieval,
            [1, 4],
        )
    finally:
        comp.close()
    for method in result["methods"]:
        assert method["metrics"]["hit@4"] == 1.0  # four pages, four chunks, one per page
        assert method["metrics"]["hit@1"] >= 0.5


def test_scifact_slice(corpora: Path, tmp_path: Path) -> None:
    bench = benchmarks.scifact(corpora)
    assert len(bench.questions.questions) > 700  # train queries with judgements
    bench.questions.questions = bench.questions.questions[:5]
    wanted = {d for q in bench.questions.questions for d in q.relevant}
    rows, others = [], 0
    for row in read_jsonl(bench.corpus):  # type: ignore[arg-type]
        if row["_id"] in wanted or others < 15:
            others += row["_id"] not in wanted
            rows.append(row)
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps(r) + "\n" for r in rows))
    bench.corpus = corpus
    comp = _components(tmp_path / "data")
    try:
        report = build_index(bench, comp)
        assert report.documents == len(rows)
        result = evaluate(
            bench.questions, ["bm25", "hybrid"], comp.store, comp.embedder, comp.settings.retrieval, [1, 10]
        )
    finally:
        comp.close()
    assert result["unit"] == "documents" and result["questions"] == 5
    for method in result["methods"]:
        assert method["metrics"]["ndcg@10"] > 0.5 and method["metrics"]["recall@10"] > 0.6
