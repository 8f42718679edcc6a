"""SIGKILL exactly before and after the steps of a generation change too short to hit from outside: the pointer's
replace (ingest, rollback), the middle of a copy, a prune between hiding a generation and deleting it, a delete's
and a restore's copy. The real CLI runs in a subprocess (killpoint.py patches one call of that process to kill
it); after each kill the published generation is whole and answers, and the next command succeeds and cleans up.
SIGKILL when an ingest logs each step is tests/api/test_generations_kill.py."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from ragline.store.generations import BUILDING, KEPT, PUBLISHED, Generations

pytestmark = pytest.mark.slow

KILLPOINT = Path(__file__).with_name("killpoint.py")
PAGES = {
    "calibrate.md": "# Calibration\n\n## Calibrating\n\nTo calibrate the flux widget, turn the lever three times.\n",
    "billing.md": "# Billing\n\n## Invoices\n\nInvoices are sent on the first Monday of each month.\n",
}
HAMMOCK = {"hammock.md": "# Hammock\n\n## Launch\n\nProject Hammock launches on 12 March from the yard.\n"}
SOUP = {"soup.md": "# Soup\n\n## Cooking\n\nBoil the leeks for twenty minutes before adding the barley.\n"}


def run(data: Path, *args: str, kill: tuple[str, str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``ragline ARGS``; with ``kill`` (target, before|after, match) killed at that call."""
    head = [sys.executable, str(KILLPOINT), *kill, "--"] if kill else [sys.executable, "-m", "ragline.cli"]
    env = {**os.environ, "RAGLINE_DATA_DIR": str(data)}
    done = subprocess.run([*head, *args], capture_output=True, text=True, env=env, timeout=600)
    if kill:
        assert done.returncode == -signal.SIGKILL, done.stderr
    else:
        assert done.returncode == 0, done.stderr
    return done


def write(folder: Path, pages: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in pages.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def answers(data: Path, question: str) -> str:
    """The sources `ragline search` answers with (it must answer)."""
    hits = json.loads(run(data, "search", question, "--json", "-k", "2").stdout)
    return " ".join(Path(h["source"]).name for h in hits["hits"])


def clean(gens: Generations) -> None:
    """Nothing of a killed change is left: no generation building, no trash, no temporary pointer."""
    assert not [g.number for g in gens.all() if g.state == BUILDING]
    assert sorted(p.name for p in gens.root.glob(".*")) == [".lock"]


@pytest.fixture
def indexed(tmp_path: Path) -> tuple[Path, Path, Generations]:
    docs, data = write(tmp_path / "docs", PAGES), tmp_path / "data"
    run(data, "ingest", str(docs))
    return docs, data, Generations(data)


@pytest.mark.parametrize("when", ["before", "after"])
def test_sigkill_on_either_side_of_the_pointer_replace(when: str, indexed: tuple[Path, Path, Generations]) -> None:
    docs, data, gens = indexed
    write(docs, HAMMOCK)
    run(data, "ingest", str(docs), kill=("ragline.store.generations:_atomic_write", when, "PUBLISHED"))
    assert gens.read(2).state == BUILDING  # killed before its record says published, whichever side
    if when == "before":
        assert gens.published() == 1 and "hammock.md" not in answers(data, "when does project hammock launch")
    else:
        assert gens.published() == 2 and "hammock.md" in answers(data, "when does project hammock launch")
    write(docs, SOUP)
    report = json.loads(run(data, "ingest", str(docs), "--json").stdout)
    clean(gens)
    if when == "before":  # the unpublished generation was swept and its number reused
        assert report["generation"] == 2 and gens.numbers() == [1, 2]
    else:  # the published one was recorded so, and kept for rollback
        assert report["generation"] == 3 and gens.numbers() == [2, 3] and gens.read(2).state == PUBLISHED
    assert "soup.md" in answers(data, "how long do the leeks boil")


def test_sigkill_in_the_middle_of_a_copy(indexed: tuple[Path, Path, Generations]) -> None:
    docs, data, gens = indexed
    write(docs, HAMMOCK)
    run(data, "ingest", str(docs), kill=("ragline.store.generations:copy_sparse", "after", "shard"))
    assert gens.published() == 1 and gens.read(2).state == BUILDING
    assert not (gens.path(2) / "index.json").is_file() or gens.read(2).documents == 0  # a part of a copy
    assert "calibrate.md" in answers(data, "how do I calibrate the widget")
    assert json.loads(run(data, "ingest", str(docs), "--json").stdout)["generation"] == 2
    clean(gens)
    assert gens.read(2).documents == 3 and "hammock.md" in answers(data, "when does project hammock launch")


def test_sigkill_while_pruning_leaves_no_half_deleted_generation(indexed: tuple[Path, Path, Generations]) -> None:
    docs, data, gens = indexed
    write(docs, HAMMOCK)
    run(data, "ingest", str(docs))
    write(docs, SOUP)
    # Generation 1 is hidden (renamed to trash) and the process dies before deleting it.
    run(data, "ingest", str(docs), kill=("os:rename", "after", ".trash-"))
    assert gens.published() == 3 and gens.numbers() == [2, 3]
    assert [p.name.split("-")[1] for p in gens.root.glob(".trash-*")] == ["1"]
    assert "soup.md" in answers(data, "how long do the leeks boil")
    assert json.loads(run(data, "generations", "rollback", "--json").stdout) == {"published": 2, "previous": 3}
    run(data, "generations", "prune")
    clean(gens)


def test_sigkill_on_either_side_of_a_rollback(indexed: tuple[Path, Path, Generations]) -> None:
    docs, data, gens = indexed
    write(docs, HAMMOCK)
    run(data, "ingest", str(docs))
    target = "ragline.store.generations:_atomic_write"
    run(data, "generations", "rollback", kill=(target, "before", "PUBLISHED"))
    assert gens.published() == 2 and "hammock.md" in answers(data, "when does project hammock launch")
    run(data, "generations", "rollback", kill=(target, "after", "PUBLISHED"))
    assert gens.published() == 1 and "hammock.md" not in answers(data, "when does project hammock launch")
    assert gens.read(1).state == gens.read(2).state == PUBLISHED
    run(data, "generations", "publish", "2")
    clean(gens)


def test_sigkill_during_a_delete_and_a_restore(indexed: tuple[Path, Path, Generations]) -> None:
    docs, data, gens = indexed
    run(data, "snapshot", "create", "before")
    write(docs, HAMMOCK)
    run(data, "ingest", str(docs))
    hammock = str(docs / "hammock.md")
    run(
        data,
        "delete",
        "--source",
        hammock,
        "--yes",
        kill=("ragline.store.generations:Generations.copy_index", "after", ""),
    )
    assert gens.published() == 2 and gens.read(3).state == BUILDING
    assert "hammock.md" in answers(data, "when does project hammock launch")
    run(data, "delete", "--source", hammock, "--yes")
    clean(gens)
    assert gens.published() == 3 and "hammock.md" not in answers(data, "when does project hammock launch")

    run(data, "snapshot", "restore", "before", "--yes", kill=("shutil:copytree", "after", "/generations/"))
    assert gens.published() == 3 and gens.read(4).state == BUILDING
    run(data, "snapshot", "restore", "before", "--yes")
    clean(gens)
    assert gens.published() == 4 and gens.read(4).state == KEPT
    assert "calibrate.md" in answers(data, "how do I calibrate the widget")
