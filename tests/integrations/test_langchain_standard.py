"""LangChain's own standard retriever suite, run on RaglineRetriever the ordinary way: a ``ragline.open(DIR)``
each time the suite builds a retriever (several over one data dir, none closed by the suite)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("langchain_tests")

from langchain_tests.integration_tests import RetrieversIntegrationTests

import ragline
from ragline.integrations.langchain import RaglineRetriever

PAGES = {
    "retries.md": "# Retries\n\n## Configuring retries\n\nSet `max_retries` to retry a failed request.\n",
    "install.md": "# Installing\n\n## With pip\n\nRun `pip install widgetkit` to install the widget kit.\n",
    "timeouts.md": "# Timeouts\n\n## Read timeouts\n\nSet `timeout` in seconds; a slow server is retried.\n",
    "logging.md": "# Logging\n\n## Levels\n\nSet `log_level` to `debug` to see each retry.\n",
}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("standard")
    for name, text in PAGES.items():
        (root / name).write_text(text, encoding="utf-8")
    with ragline.open(root / "data") as r:
        r.ingest(root, url_template="https://docs.example.com/{path_noext}.html")
    return root / "data"


@pytest.mark.slow
class TestRaglineRetrieverStandard(RetrieversIntegrationTests):
    opened: list[ragline.Ragline]
    where: Path

    @pytest.fixture(autouse=True)
    def _index(self, data_dir: Path) -> Iterator[None]:
        type(self).where, type(self).opened = data_dir, []
        yield
        for rag in type(self).opened:
            rag.close()

    @property
    def retriever_constructor(self) -> type[RaglineRetriever]:
        return RaglineRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        rag = ragline.open(self.where)  # a new one each time, as a notebook or two retrievers would
        type(self).opened.append(rag)
        return {"rag": rag}

    @property
    def retriever_query_example(self) -> str:
        return "How do I retry a failed request?"


@pytest.mark.slow
def test_two_opens_of_one_data_dir_share_the_index(data_dir: Path) -> None:
    first, second = ragline.open(data_dir), ragline.open(data_dir)
    try:
        question = "How do I retry a failed request?"
        assert [h.chunk.id for h in first.search(question, 2)] == [h.chunk.id for h in second.search(question, 2)]
        first.close()
        assert second.search(question, 1)[0].chunk.url.endswith("retries.html#configuring-retries")
        with ragline.open(data_dir) as third:  # opened after a close: the index is still shared, still served
            assert third.search(question, 1)[0].chunk.id == second.search(question, 1)[0].chunk.id
    finally:
        first.close()
        second.close()
