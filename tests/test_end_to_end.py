"""The whole query path on real parts: the LCEL site -> bundled MiniLM -> embedded Qdrant -> SmolLM2.

One module-scoped index is built once and then changed step by step, as a user would.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ragline.components import Components
from ragline.config import load_settings
from ragline.ingest.local import ingest

pytestmark = pytest.mark.slow

FALLBACKS = "https://python.langchain.com/docs/expression_language/how_to/fallbacks"
ROUTING = "https://python.langchain.com/docs/expression_language/how_to/routing"


@pytest.fixture(scope="module")
def site(corpora: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private, writable copy of the site (the test edits and deletes pages)."""
    dst = tmp_path_factory.mktemp("lcel") / "site"
    shutil.copytree(corpora / "langchain-lcel" / "site", dst)
    return dst


@pytest.fixture(scope="module")
def comp(site: Path) -> Components:
    c = Components(load_settings(data_dir=site.parent / "data"))
    yield c
    c.close()


@pytest.fixture(scope="module")
def first_report(site: Path, comp: Components):  # type: ignore[no-untyped-def]
    return ingest([site], comp)


def _points_by_doc(comp: Components) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for pid, payload in comp.store.points():
        out.setdefault(payload["source"], set()).add(pid)
    return out


def test_first_ingest_indexes_every_content_page(first_report) -> None:  # type: ignore[no-untyped-def]
    r = first_report
    # 26 LCEL pages + the site index + the docs index; 404.html has no article content worth keeping
    assert r.documents >= 26
    assert r.added == r.documents and r.updated == 0 and r.unchanged == 0
    assert r.index_chunks == r.chunks_written > r.documents
    assert all(s.reason for s in r.skipped)


def test_search_finds_the_page_and_its_anchor(first_report, comp: Components) -> None:  # type: ignore[no-untyped-def]
    hits = comp.retriever.search("How do I add fallbacks when the LLM API returns errors?", k=5)
    assert len(hits) == 5
    assert hits[0].chunk.source == FALLBACKS
    assert any(h.chunk.url.startswith(FALLBACKS + "#") for h in hits)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_search_honours_k_and_source_filter(first_report, comp: Components) -> None:  # type: ignore[no-untyped-def]
    hits = comp.retriever.search("fallbacks", k=3, filters={"source": ROUTING})
    assert len(hits) == 3
    assert {h.chunk.source for h in hits} == {ROUTING}


def test_ask_cites_the_page_that_holds_the_answer(first_report, comp: Components) -> None:  # type: ignore[no-untyped-def]
    answer = comp.agent.ask("How do I add fallbacks when the LLM API returns errors?", k=4, mode="generative")
    out = answer.to_json()
    assert out["answer"].strip()
    assert out["citations"][0]["n"] == 1
    assert any(c["source"].startswith(FALLBACKS) for c in out["citations"])
    assert out["usage"]["prompt_tokens"] > 0 and out["usage"]["completion_tokens"] > 0
    assert out["timings"]["retrieve"] > 0 and out["timings"]["generate"] > 0
    assert out["llm"].startswith("llama-cpp")
    assert len(out["document_ids"]) >= 1


def test_second_ingest_writes_nothing(first_report, site: Path, comp: Components) -> None:  # type: ignore[no-untyped-def]
    before = _points_by_doc(comp)
    r = ingest([site], comp)
    assert (r.added, r.updated, r.deleted, r.chunks_written) == (0, 0, 0, 0)
    assert r.unchanged == first_report.documents
    assert _points_by_doc(comp) == before


def test_changed_page_replaces_only_its_chunks(first_report, site: Path, comp: Components) -> None:  # type: ignore[no-untyped-def]
    before = _points_by_doc(comp)
    page = site / "docs/expression_language/how_to/fallbacks/index.html"
    html = page.read_text(encoding="utf-8")
    marker = "Zanzibar quokkas guard the fallback chain."
    page.write_text(html.replace("</article>", f"<h2 id='quokkas'>Quokkas</h2><p>{marker}</p></article>", 1))
    r = ingest([site], comp)
    assert (r.added, r.updated, r.deleted) == (0, 1, 0)
    after = _points_by_doc(comp)
    changed = {s for s in before.keys() | after.keys() if before.get(s) != after.get(s)}
    assert changed == {FALLBACKS}
    hits = comp.retriever.search("Which animals guard the fallback chain in Zanzibar?", k=1)
    assert marker in hits[0].chunk.text and hits[0].chunk.url == FALLBACKS + "#quokkas"
    # nothing of the old version is left behind: every point of the page carries the new hash
    hashes = {p["doc_hash"] for _, p in comp.store.points({"source": FALLBACKS})}
    assert len(hashes) == 1


def test_deleted_page_disappears(first_report, site: Path, comp: Components) -> None:  # type: ignore[no-untyped-def]
    shutil.rmtree(site / "docs/expression_language/how_to/routing")
    r = ingest([site], comp)
    assert r.deleted == 1 and r.added == 0 and r.updated == 0
    assert comp.store.count({"source": ROUTING}) == 0
    hits = comp.retriever.search("How do I route between chains with RunnableBranch?", k=10)
    assert all(h.chunk.source != ROUTING for h in hits)
