"""Index generations behind a Qdrant collection alias: qdrant-client's local mode on disk (the stand-in for a
server), the bundled embedding model, the Python API in this process and real `ragline` subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from qdrant_client import QdrantClient

import ragline
from ragline.components import Components
from ragline.config import load_settings
from ragline.ingest.engines import run_ingest
from ragline.ops import snapshot
from ragline.store.qdrant import QdrantStore

pytestmark = pytest.mark.slow

ALIAS = "docs"
PAGES = {
    "calibrate.md": "# Calibration\n\n## Calibrating\n\nTo calibrate the flux widget, turn the lever three times.\n",
    "storage.md": "# Storage\n\n## Storing\n\nStore the flux widget in a dry cupboard below 20 degrees Celsius.\n",
    "billing.md": "# Billing\n\n## Invoices\n\nInvoices are sent on the first Monday of each month.\n",
}
HAMMOCK = {"hammock.md": "# Hammock\n\n## Launch\n\nProject Hammock launches on 12 March from the yard.\n"}


def write(folder: Path, pages: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in pages.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def qdrant(tmp_path: Path) -> dict[str, str]:
    return {"path": str(tmp_path / "qdrant"), "collection": ALIAS}


def opened(tmp_path: Path) -> ragline.Ragline:
    return ragline.open(tmp_path / "data", qdrant=qdrant(tmp_path))


def cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "RAGLINE_DATA_DIR": str(tmp_path / "data"),
        "RAGLINE_QDRANT__PATH": str(tmp_path / "qdrant"),
        "RAGLINE_QDRANT__COLLECTION": ALIAS,
    }
    return subprocess.run(
        [sys.executable, "-m", "ragline.cli", *args], capture_output=True, text=True, env=env, timeout=600
    )


def listed(tmp_path: Path) -> dict[str, Any]:
    r = cli(tmp_path, "generations", "list", "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)  # type: ignore[no-any-return]


def layout(tmp_path: Path) -> tuple[set[str], dict[str, str]]:
    """The collections and aliases in the local-mode folder (opened while no store holds it)."""
    client = QdrantClient(path=str(tmp_path / "qdrant"))
    try:
        collections = {c.name for c in client.get_collections().collections}
        aliases = {a.alias_name: a.collection_name for a in client.get_aliases().aliases}
        return collections, aliases
    finally:
        client.close()


def sources(rag: ragline.Ragline, question: str) -> list[str]:
    return [Path(h.chunk.source).name for h in rag.search(question, 3)]


@pytest.fixture
def docs(tmp_path: Path) -> Iterator[Path]:
    yield write(tmp_path / "docs", PAGES)


def test_each_ingest_is_a_collection_behind_the_alias_and_a_reader_follows_rollback_and_prune(
    tmp_path: Path, docs: Path
) -> None:
    with opened(tmp_path) as writer:
        writer.ingest(docs)
        # A reader opened before the second ingest, held open across it (local mode: one client per folder,
        # shared by the stores of a process; a server serves readers in any process the same way).
        with opened(tmp_path) as reader:
            assert sources(reader, "how do I calibrate the widget")[0] == "calibrate.md"
            assert "hammock.md" not in sources(reader, "when does project hammock launch")
            write(docs, HAMMOCK)
            report = writer.ingest(docs)
            assert (report.added, report.unchanged, report.chunks_written) == (1, 3, 1)  # incremental on the copy
            assert sources(reader, "when does project hammock launch")[0] == "hammock.md"
            assert reader._components.store.served() == {"served": 2, "published": 2}  # type: ignore[attr-defined]
    collections, aliases = layout(tmp_path)
    assert collections == {"docs__gen1", "docs__gen2"} and aliases == {ALIAS: "docs__gen2"}

    state = listed(tmp_path)
    assert state["published"] == 2
    rows = [(g["number"], g["state"], g["base"], g["documents"], g["chunks"], g["note"]) for g in state["generations"]]
    assert rows == [(1, "published", None, 3, 3, "ingest"), (2, "published", 1, 4, 4, "ingest")]
    assert state["generations"][1]["sources"] == [str(docs)]
    assert state["generations"][1]["model"] == "sentence-transformers/all-MiniLM-L6-v2"

    back = cli(tmp_path, "generations", "rollback", "--json")
    assert back.returncode == 0, back.stderr
    assert json.loads(back.stdout) == {"published": 1, "previous": 2}
    assert layout(tmp_path)[1] == {ALIAS: "docs__gen1"}
    with opened(tmp_path) as rag:
        assert "hammock.md" not in sources(rag, "when does project hammock launch")
        rag.ingest(docs)  # generation 3, from the published one (1); prune keeps 2 and 3
    collections, aliases = layout(tmp_path)
    assert collections == {"docs__gen2", "docs__gen3"} and aliases == {ALIAS: "docs__gen3"}
    again = cli(tmp_path, "generations", "publish", "2", "--json")
    assert again.returncode == 0, again.stderr
    assert layout(tmp_path)[1] == {ALIAS: "docs__gen2"}


def test_a_failing_gate_leaves_the_alias_on_the_published_generation(tmp_path: Path, docs: Path) -> None:
    other = write(tmp_path / "other", {"recipe.md": "# Soup\n\n## Cooking\n\nBoil the leeks for twenty minutes.\n"})
    questions = tmp_path / "questions.jsonl"
    rows = [
        {"question": "how do I calibrate the flux widget", "source": str(docs / "calibrate.md")},
        {"question": "when are invoices sent", "source": str(docs / "billing.md")},
    ]
    questions.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    ok = cli(tmp_path, "ingest", str(docs), "--gate", str(questions), "--json")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["generation"] == 1

    bad = cli(tmp_path, "ingest", str(other), "--recreate", "--gate", str(questions))
    assert bad.returncode == 6, bad.stderr
    assert "did not pass its gate" in bad.stderr and "hit rate 0.000" in bad.stderr
    assert layout(tmp_path)[1] == {ALIAS: "docs__gen1"}
    state = listed(tmp_path)
    assert [(g["number"], g["state"]) for g in state["generations"]] == [(1, "published"), (2, "failed")]
    assert state["generations"][1]["gate"]["published"]["hit_rate"] == 1.0

    none = cli(tmp_path, "ingest", str(tmp_path / "other"), "--recreate", "--min-documents", "2")
    assert none.returncode == 6 and "1 documents, fewer than the 2 required" in none.stderr
    found = cli(tmp_path, "search", "calibrate the flux widget", "--json")
    assert found.returncode == 0 and "calibrate.md" in found.stdout


def test_a_collection_made_before_generations_is_adopted(tmp_path: Path, docs: Path) -> None:
    # What an ingest wrote before generations: the points in a plain collection named as configured.
    components = Components(load_settings(data_dir=tmp_path / "data", qdrant=qdrant(tmp_path)))
    plain = QdrantStore(path=str(tmp_path / "qdrant"), collection=ALIAS)
    components.__dict__["store"] = plain
    run_ingest([docs], components)
    components.close()
    assert layout(tmp_path) == ({ALIAS}, {})

    with opened(tmp_path) as rag:
        assert sources(rag, "how do I calibrate the widget")[0] == "calibrate.md"  # read as it is
        write(docs, HAMMOCK)
        report = rag.ingest(docs)
        assert (report.added, report.unchanged) == (1, 3)  # the adopted copy carried the unchanged ones
        assert sources(rag, "when does project hammock launch")[0] == "hammock.md"
    collections, aliases = layout(tmp_path)
    assert collections == {"docs__gen1", "docs__gen2"} and aliases == {ALIAS: "docs__gen2"}
    state = listed(tmp_path)
    assert [(g["number"], g["note"], g["documents"]) for g in state["generations"]] == [
        (1, "adopted", 3),
        (2, "ingest", 4),
    ]


def test_delete_and_restore_are_generations(tmp_path: Path, docs: Path) -> None:
    with opened(tmp_path) as rag:
        rag.ingest(docs)
        store = rag._components.store
        manifest = snapshot.create(store, tmp_path / "snapshots", "before")
        report = rag.delete(str(docs / "billing.md"))
        assert report.chunks == 1
        assert store.served()["published"] == 2  # type: ignore[attr-defined]
        assert "billing.md" not in sources(rag, "when are invoices sent")
        assert rag.delete(str(docs / "nothing.md")).chunks == 0  # nothing deleted: no generation
        restored = snapshot.restore(store, tmp_path / "snapshots", "before")
        assert restored.points == manifest.points == 3
        assert store.served()["published"] == 3  # type: ignore[attr-defined]
        assert sources(rag, "when are invoices sent")[0] == "billing.md"
    collections, aliases = layout(tmp_path)
    assert collections == {"docs__gen2", "docs__gen3"} and aliases == {ALIAS: "docs__gen3"}
    notes = [(g["number"], g["state"], g["note"]) for g in listed(tmp_path)["generations"]]
    assert notes == [(2, "published", f"delete {docs / 'billing.md'}"), (3, "kept", "restored from snapshot before")]
