"""Notebooks: prose, code and cut text outputs; rich outputs and broken JSON handled."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ragline.config import ParseSettings
from ragline.errors import SourceError
from ragline.parse import parse_bytes
from ragline.parse.notebook import TRUNCATION_MARK, notebook_to_markdown, parse_notebook


def _nb(cells: list[dict[str, Any]], **extra: Any) -> str:
    return json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": cells, **extra})


def _code(source: str, outputs: list[dict[str, Any]]) -> dict[str, Any]:
    return {"cell_type": "code", "source": source, "outputs": outputs, "metadata": {}, "execution_count": 1}


def test_real_notebook_outputs_are_cut(corpora: Path) -> None:
    path = corpora / "langchain-lcel/src/expression_language/interface.ipynb"
    raw = json.loads(path.read_text(encoding="utf-8"))
    longest = max(
        len("".join(o.get("text", "")))
        for c in raw["cells"]
        if c["cell_type"] == "code"
        for o in c.get("outputs", [])
        if o.get("output_type") == "stream"
    )
    assert longest > 500  # the test needs an output over the default budget
    doc = parse_bytes(path.read_bytes(), source="s", kind="notebook", settings=ParseSettings(), path=str(path))
    assert doc.kind == "notebook" and doc.title == "Interface"
    assert TRUNCATION_MARK in doc.text
    assert "model = ChatOpenAI()" in doc.text  # code cells are kept
    assert "input-schema" in [s.anchor for s in doc.sections]
    small = parse_bytes(
        path.read_bytes(), source="s", kind="notebook", settings=ParseSettings(notebook_output_chars=40), path=str(path)
    )
    assert len(small.text) < len(doc.text)
    assert small.text.count(TRUNCATION_MARK) > doc.text.count(TRUNCATION_MARK)


def test_outputs_kept_cut_or_dropped_by_type() -> None:
    text = _nb(
        [
            {"cell_type": "markdown", "source": ["# Title\n", "\n", "Intro."], "metadata": {}},
            _code(
                "print('x' * 100)",
                [
                    {"output_type": "stream", "name": "stdout", "text": ["a" * 30, "b" * 30]},
                    {"output_type": "execute_result", "data": {"text/plain": "42"}, "metadata": {}},
                    {"output_type": "display_data", "data": {"image/png": "iVBOR", "text/plain": "<Figure>"}},
                    {"output_type": "display_data", "data": {"text/html": "<b>t</b>", "text/plain": "HTMLREPR"}},
                    {"output_type": "error", "ename": "ValueError", "evalue": "bad", "traceback": ["\x1b[0;31mTB"]},
                ],
            ),
        ]
    )
    doc = parse_notebook(text, source="s", output_chars=40)
    assert doc.title == "Title"
    lines = doc.sections[0].text.split("\n")
    assert lines == ["Intro.", "print('x' * 100)", "a" * 30 + "b" * 10, TRUNCATION_MARK, "42", "ValueError: bad"]
    assert "<Figure>" not in doc.text and "HTMLREPR" not in doc.text and "\x1b" not in doc.text
    assert "42" not in parse_notebook(text, source="s", output_chars=0).text


def test_code_with_backticks_stays_inside_its_fence() -> None:
    md = notebook_to_markdown(json.loads(_nb([_code("s = '''\n```\n# not a heading\n```\n'''", [])])), output_chars=100)
    doc = parse_notebook(_nb([_code("s = '''\n```\n# not a heading\n```\n'''", [])]), source="s")
    assert md.startswith("````python")
    assert [s.anchor for s in doc.sections] == [None] and "# not a heading" in doc.text


def test_front_matter_raw_cell_and_language() -> None:
    text = _nb(
        [
            {
                "cell_type": "raw",
                "source": "---\ntitle: Why use it\n---\n\nimport { X } from '@theme/X';",
                "metadata": {},
            },
            {"cell_type": "markdown", "source": "## Part", "metadata": {}},
            _code("fn main() {}", []),
        ],
        metadata={"kernelspec": {"language": "rust", "name": "rust"}},
    )
    assert "```rust" in notebook_to_markdown(json.loads(text), output_chars=10)
    doc = parse_notebook(text, source="s")
    assert doc.title == "Why use it"
    assert [(s.title, s.anchor) for s in doc.sections] == [("Part", "part")]
    assert doc.text == "fn main() {}"


def test_nbformat_3_and_missing_fields() -> None:
    v3 = {
        "nbformat": 3,
        "metadata": {"language": "python"},
        "worksheets": [
            {
                "cells": [
                    {"cell_type": "heading", "level": 2, "source": "Old style"},
                    {
                        "cell_type": "code",
                        "input": ["x = 1\n", "x"],
                        "outputs": [{"output_type": "pyout", "text": "1"}],
                    },
                    {
                        "cell_type": "code",
                        "input": "plot()",
                        "outputs": [{"output_type": "display_data", "png": "..", "text": "<Fig>"}],
                    },
                ]
            }
        ],
    }
    doc = parse_notebook(json.dumps(v3), source="s")
    assert [(s.title, s.level) for s in doc.sections] == [("Old style", 2)]
    assert doc.text == "x = 1\nx\n1\nplot()"
    odd = _nb([{"cell_type": "code"}, {"cell_type": "markdown", "source": None}, 5, {"no": "type"}])  # type: ignore[list-item]
    assert parse_notebook(odd, source="s").sections == []


@pytest.mark.parametrize("text", ['{"cells": [', "[1, 2]", "", "[" * 100_000, "not json"])
def test_broken_json_is_a_source_error(text: str) -> None:
    with pytest.raises(SourceError, match="invalid notebook"):
        parse_notebook(text, source="s")
