"""The two standard benchmarks on the shared corpora: Ray documentation questions and BEIR SciFact.

Each benchmark says what to index and which questions to ask; indexing and scoring are the runner's.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ragline.config import Settings
from ragline.errors import SourceError
from ragline.evaluate.datasets import (
    Question,
    QuestionSet,
    beir_documents,
    load_beir_questions,
    normalise_url,
    page_key,
    read_jsonl,
)
from ragline.records import Document
from ragline.sources.files import source_url

RAY_URL_TEMPLATE = "https://docs.ray.io/en/master/{path_noext}.html"


@dataclass(slots=True)
class Benchmark:
    """What to index (folders with a URL template, or documents) and the questions to ask."""

    name: str
    questions: QuestionSet
    paths: list[Path]
    url_template: str | None = None
    corpus: Path | None = None  # a BEIR corpus.jsonl, indexed through :func:`documents`
    include_paths: list[Path] = field(default_factory=list)  # folders mirroring the pages' tree (included code)

    def configure(self, settings: Settings) -> None:
        """Set what the benchmark decides about parsing: its URL template and where included files live."""
        settings.parse.url_template = self.url_template
        settings.parse.include_paths = list(self.include_paths)

    def documents(self, limit: int | None = None) -> Iterator[Document]:
        if self.corpus is None:
            return iter(())
        return beir_documents(self.corpus, self.name, limit)


def _need(path: Path) -> Path:
    if not path.exists():
        raise SourceError(f"{path} not found (the shared corpora live beside the checkout)")
    return path


def ray(corpora: Path, split: str = "dev", *, include_code: bool = False) -> Benchmark:
    """Ray docs (+ the supplement's page sources) and the questions whose page maps to a source file.

    The page of a question is its URL without anchor; ``url_to_doc_source.jsonl`` maps it to a file under
    ``ray-docs/`` (or, for pages missing at that commit, under ``ray-docs-supplement/``). Pages generated
    from docstrings have no file: those questions cannot be answered from this corpus and are not counted.
    ``include_code`` also reads the code the pages ``literalinclude`` (``ray-docs-code/``), as the rendered
    pages show it; the benchmark as defined indexes the page sources alone.
    """
    evald = _need(corpora / "ray-eval")
    mapping = {normalise_url(row["url"]): row for row in read_jsonl(evald / "url_to_doc_source.jsonl")}
    questions: list[Question] = []
    skipped: Counter[str] = Counter()
    rows = list(read_jsonl(evald / f"questions-{split}.jsonl"))
    for n, row in enumerate(rows, 1):
        entry = mapping.get(normalise_url(row["source"]))
        path = _mapped_file(entry)
        if path is None:
            skipped[_kind(entry)] += 1
            continue
        url = source_url(path, RAY_URL_TEMPLATE)
        questions.append(
            Question(
                qid=str(n),
                text=row["question"].strip(),
                relevant={normalise_url(url): 1},
                reference=row.get("answer") or row.get("reference"),
                extra={"source": row["source"], "file": path},
            )
        )
    supplement = _need(corpora / "ray-docs-supplement")
    paths = [_need(corpora / "ray-docs"), *sorted(p for p in supplement.iterdir() if p.is_dir())]
    notes = {"questions": len(rows), "counted": len(questions), "not_counted": dict(skipped)}
    qset = QuestionSet(f"ray-{split}", questions, page_key, "chunks", notes)
    # The pages' literalinclude'd code (serve/doc_code/*.py...) lives in a folder of its own, mirroring ray-docs.
    code = [_need(corpora / "ray-docs-code")] if include_code else []
    return Benchmark(f"ray-{split}", qset, paths, url_template=RAY_URL_TEMPLATE, include_paths=code)


def _mapped_file(entry: dict | None) -> str | None:
    if entry is None:
        return None
    if entry.get("kind") == "source" and entry.get("doc_source_path"):
        return str(entry["doc_source_path"])
    fallback = entry.get("fallback") or {}
    return str(fallback["doc_source_path"]) if fallback.get("doc_source_path") else None


def _kind(entry: dict | None) -> str:
    if entry is None:
        return "unmapped"
    return str(entry.get("kind", "unknown")).split(" ", 1)[0]


def scifact(corpora: Path, split: str = "train") -> Benchmark:
    """BEIR SciFact: 5,183 abstracts, claims as queries, document-level judgements."""
    root = _need(corpora / "beir-scifact")
    qset = load_beir_questions(root / f"queries-{split}.jsonl", root / "qrels" / f"{split}.tsv", f"scifact-{split}")
    qset.notes = {"questions": len(qset.questions)}
    return Benchmark("scifact", qset, [], corpus=root / "corpus.jsonl")


BENCHMARKS = {"ray": ray, "scifact": scifact}
