"""Index generations as a user meets them: real `ragline` subprocesses, the bundled model, the embedded engine,
and a reader in this process that follows each publish without reopening."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import ragline
from ragline.store.generations import Generations

pytestmark = pytest.mark.slow

PAGES = {
    "calibrate.md": "# Calibration\n\n## Calibrating\n\nTo calibrate the flux widget, turn the lever three times.\n",
    "storage.md": "# Storage\n\n## Storing\n\nStore the flux widget in a dry cupboard below 20 degrees Celsius.\n",
    "billing.md": "# Billing\n\n## Invoices\n\nInvoices are sent on the first Monday of each month.\n",
}


def ragline_cli(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RAGLINE_DATA_DIR": str(data_dir)}
    return subprocess.run(
        [sys.executable, "-m", "ragline.cli", *args], capture_output=True, text=True, env=env, timeout=600
    )


def write(folder: Path, pages: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in pages.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def listed(data_dir: Path) -> dict:  # type: ignore[type-arg]
    r = ragline_cli("generations", "list", "--json", data_dir=data_dir)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)  # type: ignore[no-any-return]


def wait_for(predicate, timeout: float = 15.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def sources(reader: ragline.Ragline, question: str) -> list[str]:
    return [Path(h.chunk.source).name for h in reader.search(question, 3)]


def test_generations_publish_prune_roll_back_and_a_reader_follows(tmp_path: Path) -> None:
    docs = write(tmp_path / "docs", PAGES)
    data = tmp_path / "data"
    first = ragline_cli("ingest", str(docs), "--json", data_dir=data)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["generation"] == 1

    # A reader in this process holds generation 1 loaded while the next ingests build beside it.
    with ragline.open(data) as reader:
        assert sources(reader, "how do I calibrate the widget")[0] == "calibrate.md"
        write(docs, {"hammock.md": "# Hammock\n\n## Launch\n\nProject Hammock launches on 12 March from the yard.\n"})
        second = ragline_cli("ingest", str(docs), "--json", data_dir=data)
        assert second.returncode == 0, second.stderr
        report = json.loads(second.stdout)
        assert (report["generation"], report["added"], report["unchanged"], report["chunks_written"]) == (2, 1, 3, 1)
        wait_for(lambda: "hammock.md" in sources(reader, "when does project hammock launch"))
        assert reader.components.store.served()["served"] == 2  # type: ignore[attr-defined]

        state = listed(data)
        assert state["published"] == 2
        assert [(g["number"], g["state"], g["base"]) for g in state["generations"]] == [
            (1, "published", None),
            (2, "published", 1),
        ]
        assert state["generations"][1]["documents"] == 4 and state["generations"][1]["sources"] == [str(docs)]

        # A delete is a new generation too, published at once, while this process serves the previous one.
        deleted = ragline_cli("delete", "--source", str(docs / "hammock.md"), "--yes", data_dir=data)
        assert deleted.returncode == 0, deleted.stderr
        assert listed(data)["published"] == 3
        wait_for(lambda: "hammock.md" not in sources(reader, "when does project hammock launch"))
        assert [g["number"] for g in listed(data)["generations"]] == [2, 3]  # two full generations: 1 was pruned

        rolled = ragline_cli("generations", "rollback", "--json", data_dir=data)
        assert rolled.returncode == 0, rolled.stderr
        assert json.loads(rolled.stdout) == {"published": 2, "previous": 3}
        wait_for(lambda: "hammock.md" in sources(reader, "when does project hammock launch"))

        assert ragline_cli("generations", "publish", "3", data_dir=data).returncode == 0
        wait_for(lambda: "hammock.md" not in sources(reader, "when does project hammock launch"))

    status = ragline_cli("status", "--json", data_dir=data)
    assert json.loads(status.stdout)["generation"] == {"served": 3, "published": 3}


def test_a_failing_gate_or_too_few_documents_keep_the_published_generation(tmp_path: Path) -> None:
    docs = write(tmp_path / "docs", PAGES)
    other = write(tmp_path / "other", {"recipe.md": "# Soup\n\n## Cooking\n\nBoil the leeks for twenty minutes.\n"})
    empty = tmp_path / "empty"
    empty.mkdir()
    questions = tmp_path / "questions.jsonl"
    rows = [
        {"question": "how do I calibrate the flux widget", "source": str(docs / "calibrate.md")},
        {"question": "where should the flux widget be stored", "source": str(docs / "storage.md")},
        {"question": "when are invoices sent", "source": str(docs / "billing.md")},
    ]
    questions.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    data = tmp_path / "data"

    ok = ragline_cli("ingest", str(docs), "--gate", str(questions), "--json", data_dir=data)
    assert ok.returncode == 0, ok.stderr
    assert listed(data)["generations"][0]["gate"]["new"]["hit_rate"] == 1.0

    # A mistyped folder, rebuilt from empty: every question loses its page.
    bad = ragline_cli("ingest", str(other), "--recreate", "--gate", str(questions), data_dir=data)
    assert bad.returncode == 6, bad.stderr
    assert "did not pass its gate" in bad.stderr and "hit rate 0.000" in bad.stderr
    state = listed(data)
    assert state["published"] == 1
    assert [(g["number"], g["state"]) for g in state["generations"]] == [(1, "published"), (2, "failed")]
    assert state["generations"][1]["gate"]["published"]["hit_rate"] == 1.0

    # An empty crawl never replaces a good index.
    none = ragline_cli("ingest", str(empty), "--recreate", "--min-documents", "1", data_dir=data)
    assert none.returncode == 6, none.stderr
    assert "0 documents, fewer than the 1 required" in none.stderr
    assert listed(data)["published"] == 1
    found = ragline_cli("search", "calibrate the flux widget", "--json", data_dir=data)
    assert "calibrate.md" in found.stdout

    # A good ingest passes and publishes; the failed ones are pruned after it.
    again = ragline_cli("ingest", str(docs), "--gate", str(questions), "--min-documents", "3", data_dir=data)
    assert again.returncode == 0, again.stderr
    assert [(g["number"], g["state"]) for g in listed(data)["generations"]] == [(1, "published"), (4, "published")]


def test_sigkill_mid_build_leaves_the_published_generation_and_the_next_ingest_cleans_up(tmp_path: Path) -> None:
    docs = write(tmp_path / "docs", PAGES)
    data = tmp_path / "data"
    assert ragline_cli("ingest", str(docs), data_dir=data).returncode == 0
    many = {f"page{i}.md": f"# Page {i}\n\n## Part\n\n" + f"Paragraph {i} about topic {i}. " * 200 for i in range(60)}
    write(docs, many)
    gens = Generations(data)
    env = {**os.environ, "RAGLINE_DATA_DIR": str(data)}
    proc = subprocess.Popen([sys.executable, "-m", "ragline.cli", "ingest", str(docs)], env=env)
    try:
        wait_for(lambda: (gens.root / "2" / "shard").is_dir(), timeout=120)  # copied, writing
        time.sleep(1.0)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert gens.published() == 1 and gens.read(2).state == "building"
    with ragline.open(data) as reader:
        assert sources(reader, "how do I calibrate the widget")[0] == "calibrate.md"
    done = ragline_cli("ingest", str(docs), "--json", data_dir=data)
    assert done.returncode == 0, done.stderr
    # The half-built generation was swept and its number given to the one built now.
    assert json.loads(done.stdout)["generation"] == 2
    assert gens.numbers() == [1, 2] and gens.read(2).state == "published" and gens.read(2).documents == 63


def test_a_replica_copy_follows_publishes_and_keeps_serving_when_one_does_not_load(tmp_path: Path) -> None:
    """The Ray Serve replica's retriever, in this process: it reads each generation from a private copy it
    takes from a thread of its own, deletes the old copy, and keeps the one it has when a new one is refused."""
    import asyncio
    import shutil
    import tempfile

    from ragline.config import load_settings
    from ragline.records import Query
    from ragline.serving.deployments import ReplicaRetriever

    data = tmp_path / "data"
    docs = write(tmp_path / "docs", {"calibrate.md": PAGES["calibrate.md"]})
    assert ragline_cli("ingest", str(docs), data_dir=data).returncode == 0
    replica = ReplicaRetriever(load_settings(data_dir=data))
    try:

        def found(question: str) -> list[str]:
            hits = asyncio.run(replica.search(Query(question=question, k=2)))
            return [Path(h.chunk.source).name for h in hits]

        def report() -> dict:  # type: ignore[type-arg]
            return asyncio.run(replica.generation()) or {}

        copies = lambda: set(Path(tempfile.gettempdir()).glob(f"ragline-replica-{os.getpid()}-*"))  # noqa: E731
        first = copies()
        assert report()["served"] == 1 and len(first) == 1
        write(docs, {"billing.md": PAGES["billing.md"]})
        assert ragline_cli("ingest", str(docs), data_dir=data).returncode == 0
        wait_for(lambda: report()["served"] == 2, timeout=10)
        assert found("when are invoices sent")[0] == "billing.md"
        wait_for(lambda: not (first & copies()), timeout=5)  # the old copy is deleted once no search holds it
        # A generation built with another model is refused: the replica keeps serving generation 2.
        gens = Generations(data)
        shutil.copytree(gens.path(2), gens.path(3))
        (gens.path(3) / "index.json").write_text('{"model": "another/model", "dimension": 384}', encoding="utf-8")
        with gens.locked():
            gens.publish(3)
        wait_for(lambda: "refused" in report(), timeout=10)
        assert report()["served"] == 2 and report()["published"] == 3 and report()["refused"]["generation"] == 3
        assert found("when are invoices sent")[0] == "billing.md"
    finally:
        replica.close()
    assert not copies()


def test_new_chunk_settings_build_a_generation_from_empty_while_the_old_one_serves(tmp_path: Path) -> None:
    docs = write(tmp_path / "docs", PAGES)
    data = tmp_path / "data"
    assert ragline_cli("ingest", str(docs), data_dir=data).returncode == 0
    with ragline.open(data) as reader:
        assert sources(reader, "how do I calibrate the widget")[0] == "calibrate.md"
        env = {**os.environ, "RAGLINE_DATA_DIR": str(data), "RAGLINE_CHUNK__SIZE": "120"}
        migrated = subprocess.run(
            [sys.executable, "-m", "ragline.cli", "ingest", str(docs), "--json"],
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
        )
        assert migrated.returncode == 0, migrated.stderr
        report = json.loads(migrated.stdout)
        # Nothing carried over: every document is chunked again with the new settings, beside generation 1.
        assert (report["generation"], report["added"], report["unchanged"]) == (2, 3, 0)
        state = listed(data)
        assert [(g["number"], g["base"]) for g in state["generations"]] == [(1, None), (2, None)]
        # The reader moves on its next searches, and answers from the new generation.
        served = reader.components.store.served  # type: ignore[attr-defined]
        wait_for(lambda: bool(sources(reader, "how do I calibrate the widget")) and served()["served"] == 2)
        assert sources(reader, "how do I calibrate the widget")[0] == "calibrate.md"
    recorded = json.loads((data / "generations" / "2" / "generation.json").read_text(encoding="utf-8"))
    assert recorded["chunking"]["size"] == 120
    first = json.loads((data / "generations" / "1" / "generation.json").read_text(encoding="utf-8"))
    assert first["chunking"]["size"] != 120
