"""The LangChain retriever, driven by LangChain itself: invoke, ainvoke, batch and an LCEL chain."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator

import pytest

pytest.importorskip("langchain_core")

from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableLambda, RunnablePassthrough

import ragline
from ragline.integrations.langchain import RaglineRetriever

SITE = "https://docs.example.com"
PAGES = {
    "retries.md": "# Retries\n\n## Configuring retries\n\nSet `max_retries` to retry a failed request.\n",
    "install.md": "# Installing\n\n## With pip\n\nRun `pip install widgetkit` to install the widget kit.\n",
}


@pytest.fixture(scope="module")
def rag(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ragline.Ragline]:
    root = tmp_path_factory.mktemp("langchain")
    for tenant, (name, text) in zip(("acme", "globex"), PAGES.items(), strict=True):
        (root / tenant).mkdir()
        (root / tenant / name).write_text(text, encoding="utf-8")
    with ragline.open(root / "data") as r:
        for tenant in ("acme", "globex"):
            r.ingest(root / tenant, tenant=tenant, url_template=SITE + "/{path_noext}.html")
        yield r


@pytest.mark.slow
def test_invoke_returns_documents_with_source_and_score(rag: ragline.Ragline) -> None:
    retriever = RaglineRetriever(rag=rag, k=2)
    assert isinstance(retriever, BaseRetriever)
    docs = retriever.invoke("How do I retry a failed request?")
    assert all(isinstance(d, Document) for d in docs) and len(docs) == 2
    top = docs[0]
    assert top.metadata["source"] == f"{SITE}/retries.html#configuring-retries"
    assert "max_retries" in top.page_content
    assert top.metadata["score"] >= docs[1].metadata["score"] > 0
    assert top.metadata["chunk_id"] == top.id and top.metadata["title"] == "Retries"
    assert [d.metadata["rank"] for d in docs] == [1, 2]
    # The same ranking as Ragline.search, i.e. as `ragline search`.
    assert [d.metadata["chunk_id"] for d in docs] == [
        h.chunk.id for h in rag.search("How do I retry a failed request?", 2)
    ]
    # k given to invoke (LangChain's standard retriever tests do this) overrides the retriever's, for that call.
    one = retriever.invoke("How do I retry a failed request?", k=1)
    assert [d.id for d in one] == [top.id]
    assert [d.id for d in asyncio.run(retriever.ainvoke("How do I retry a failed request?", k=1))] == [top.id]
    assert len(retriever.invoke("How do I retry a failed request?")) == 2


@pytest.mark.slow
def test_ainvoke_batch_and_tenant(rag: ragline.Ragline) -> None:
    acme = RaglineRetriever(rag=rag, k=5, tenant="acme")
    docs = asyncio.run(acme.ainvoke("install the widget kit with pip"))
    assert docs and {d.metadata["tenant"] for d in docs} == {"acme"}
    batches = RaglineRetriever(rag=rag, k=1).batch(["retry a failed request", "pip install widgetkit"])
    assert [b[0].metadata["source"] for b in batches] == [
        f"{SITE}/retries.html#configuring-retries",
        f"{SITE}/install.html#with-pip",
    ]
    filtered = RaglineRetriever(rag=rag, k=5, filters={"source": f"{SITE}/install.html"}).invoke("retry")
    assert {d.metadata["source"] for d in filtered} == {f"{SITE}/install.html#with-pip"}


@pytest.mark.slow
def test_in_an_lcel_chain(rag: ragline.Ragline) -> None:
    retriever = RaglineRetriever(rag=rag, k=1)
    sources = RunnableLambda(lambda docs: [d.metadata["source"] for d in docs])
    chain = {"sources": retriever | sources, "question": RunnablePassthrough()} | RunnableLambda(
        lambda x: f"{x['question']} -> {', '.join(x['sources'])}"
    )
    assert chain.invoke("retry a failed request") == (
        f"retry a failed request -> {SITE}/retries.html#configuring-retries"
    )
    assert asyncio.run(chain.ainvoke("pip install")).endswith(f"{SITE}/install.html#with-pip")


@pytest.mark.slow
def test_bad_input_is_a_clear_error(rag: ragline.Ragline) -> None:
    from ragline.errors import BadRequestError

    with pytest.raises(BadRequestError, match="k must be between"):
        RaglineRetriever(rag=rag, k=0).invoke("retry")


def test_a_missing_extra_names_it() -> None:
    code = (
        "import sys\n"
        "sys.modules['langchain_core'] = None  # as if langchain-core were not installed\n"
        "try:\n"
        "    import ragline.integrations.langchain\n"
        "except Exception as e:\n"
        "    print(type(e).__name__, e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True).stdout
    assert "MissingDependencyError" in out and "pip install 'ragline[langchain]'" in out
