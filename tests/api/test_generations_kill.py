"""SIGKILL at each step of an ingest that makes a generation: the real `ragline ingest` (a subprocess, the bundled
model, the embedded engine, a gate of questions) is killed as soon as it logs the step it starts (`ragline -v`
logs `generation N: copy|baseline|write|gate|publish` and `generation K: prune`). After each kill the published
generation is the old one or the whole new one, `ragline search` answers from it, a server that was running all
along answers, and the next ingest succeeds and leaves nothing of the killed one behind.

The pointer's own replace is one `os.replace`, too short to hit from outside: a kill on `publish` lands on
either side of it (both are accepted here), and tests/ops/test_kill_points.py kills exactly before and after it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ragline.store.generations import BUILDING, Generations

from .helpers import app_settings, serve_in_process

pytestmark = pytest.mark.slow

STEP = re.compile(r"generation (\d+): (copy|baseline|write|gate|publish|prune)\b")
# How far past its step a kill may land: the steps killed on are long (a copy is not: the baseline follows it),
# except the pointer's replace and pruning, after which the process may finish before the signal arrives.
LANDS = {
    "copy": {"copy", "baseline"},
    "baseline": {"baseline"},
    "write": {"write"},
    "gate": {"gate"},
    "publish": {"publish", "prune", None},
    "prune": {"prune", None},
}
ORIGINAL = {
    "calibrate.md": "# Calibration\n\n## Calibrating\n\nTo calibrate the flux widget, turn the lever three times.\n",
    "storage.md": "# Storage\n\n## Storing\n\nStore the flux widget in a dry cupboard below 20 degrees Celsius.\n",
    "billing.md": "# Billing\n\n## Invoices\n\nInvoices are sent on the first Monday of each month.\n",
}
QUESTIONS = [
    ("how do I calibrate the flux widget", "calibrate.md"),
    ("where should the flux widget be stored", "storage.md"),
    ("when are invoices sent", "billing.md"),
]


def env(data: Path) -> dict[str, str]:
    return {**os.environ, "RAGLINE_DATA_DIR": str(data)}


def cli(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ragline.cli", *args], capture_output=True, text=True, env=env(data), timeout=600
    )


TOPICS = {
    "first": "harbour",
    "second": "orchard",
    "copy": "walrus",
    "baseline": "pelican",
    "write": "glacier",
    "gate": "trombone",
    "publish": "cactus",
    "prune": "lighthouse",
}


def pages(step: str, n: int = 12) -> dict[str, str]:
    """``n`` pages only this step adds (on a topic of their own), long enough that writing them takes seconds."""
    topic = TOPICS[step]
    body = " ".join(f"The {topic} ledger entry {i} records shipment {i} of {topic} crates." for i in range(25))
    return {f"{step}-{i}.md": f"# {topic.title()} {i}\n\n## Part\n\n{body}\n\n## More\n\n{body}\n" for i in range(n)}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path, Path, str]]:
    """Two generations published over the original pages, a gate of questions, and a server on them."""
    root = tmp_path_factory.mktemp("kill")
    docs, data = root / "docs", root / "data"
    docs.mkdir()
    for name, text in ORIGINAL.items():
        (docs / name).write_text(text, encoding="utf-8")
    gate = root / "questions.jsonl"
    rows = [{"question": q, "source": str(docs / page)} for q, page in QUESTIONS] * 10  # a gate that takes time
    gate.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    for step in ("first", "second"):  # the next publish prunes generation 1
        for name, text in pages(step, 2).items():
            (docs / name).write_text(text, encoding="utf-8")
        assert cli(data, "ingest", str(docs)).returncode == 0
    with serve_in_process(app_settings(data, api_keys={})) as url:
        yield docs, data, gate, url


def killed_at(step: str, docs: Path, data: Path, gate: Path) -> tuple[int | None, str | None, str]:
    """Run `ragline -v ingest` and SIGKILL it when it logs ``step``: its exit code, the last step it logged
    before it died (None: it logged none after ``step``... or finished), and its whole stderr."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "ragline.cli", "-v", "ingest", str(docs), "--gate", str(gate)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env(data),
        start_new_session=True,
    )
    watchdog = threading.Timer(300, lambda: os.killpg(proc.pid, signal.SIGKILL))
    watchdog.start()
    seen: list[str] = []
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            seen.append(line)
            m = STEP.search(line)
            if m and m.group(2) == step:
                os.killpg(proc.pid, signal.SIGKILL)
                break
        seen.append(proc.stderr.read())  # what it wrote before the signal landed
        proc.wait(timeout=60)
    finally:
        watchdog.cancel()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    text = "".join(seen)
    steps = [m.group(2) for m in STEP.finditer(text)]
    assert step in steps, f"the ingest never reached {step}:\n{text}"
    finished = "published generation" in text and proc.returncode == 0
    return proc.returncode, None if finished else steps[-1], text


def found(client: httpx.Client, url: str, question: str, page: str) -> bool:
    r = client.post(f"{url}/search", json={"query": question, "k": 3})
    assert r.status_code == 200, r.text
    return page in r.text


def searched(data: Path, question: str) -> str:
    r = cli(data, "search", question, "--json")
    assert r.returncode == 0, r.stderr
    return r.stdout


def leftovers(gens: Generations) -> list[str]:
    """What a killed change can leave in the generations folder besides generations."""
    return sorted(p.name for p in gens.root.glob(".*") if p.name != ".lock")


@pytest.mark.parametrize("step", list(LANDS))
def test_sigkill_at_each_step_of_an_ingest(step: str, world: tuple[Path, Path, Path, str]) -> None:
    docs, data, gate, url = world
    gens = Generations(data)
    old = gens.published()
    assert old is not None
    old_docs = gens.read(old).documents
    for name, text in pages(step).items():
        (docs / name).write_text(text, encoding="utf-8")
    new_page, new_question = f"/{step}-", f"which {TOPICS[step]} ledger entry records a shipment"

    code, landed, log = killed_at(step, docs, data, gate)
    assert landed in LANDS[step], f"killed on {step}, but the process had gone on to {landed}:\n{log}"
    assert code in ((-signal.SIGKILL, 0) if landed is None else (-signal.SIGKILL,)), log

    # The published generation is the old one, or the whole new one (never a part of it).
    published = gens.published()
    new = int(STEP.findall(log)[0][0])
    print(f"killed on {step}: died in {landed or 'nothing (it had finished)'}, generation {published} published")
    assert published in (old, new), (published, old, new)
    assert (gens.path(published) / "index.json").is_file()
    whole = gens.read(published)
    if published == old:
        assert landed not in ("prune", None)  # a prune comes after the pointer moved
        assert whole.documents == old_docs
    else:
        assert landed in ("publish", "prune", None)  # only the publish step moves the pointer
        assert whole.documents == old_docs + len(pages(step))
    answer = searched(data, "how do I calibrate the flux widget")
    assert "calibrate.md" in answer
    assert (new_page in searched(data, new_question)) == (published == new)
    # A server that ran all along answers, from the published generation within its look at the pointer.
    with httpx.Client(timeout=60) as client:
        assert found(client, url, "how do I calibrate the flux widget", "calibrate.md")
        for _ in range(50):
            if found(client, url, new_question, new_page) == (published == new):
                break
            threading.Event().wait(0.2)
        else:
            raise AssertionError("the server does not serve the published generation")

        # The next ingest succeeds, publishes the new pages and leaves nothing of the killed one.
        again = cli(data, "ingest", str(docs), "--gate", str(gate), "--json")
        assert again.returncode == 0, again.stderr
        report = json.loads(again.stdout)
        assert report["generation"] == gens.published()
        assert not [g.number for g in gens.all() if g.state == BUILDING]
        assert leftovers(gens) == []
        assert gens.read(gens.published()).documents == old_docs + len(pages(step))  # type: ignore[arg-type]
        assert len([g for g in gens.all() if g.state == "published"]) <= 2  # pruned as usual
        for _ in range(50):
            if found(client, url, new_question, new_page):
                break
            threading.Event().wait(0.2)
        else:
            raise AssertionError("the server did not move to the generation published after the kill")
