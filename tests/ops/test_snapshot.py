"""Snapshots of a real index (bundled model, embedded engine): a restore gives back the same counts and the same
search results, changes made after the snapshot are gone, and a restore that does not match is refused."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ragline.components import Components
from ragline.config import load_settings
from ragline.errors import BadRequestError, StoreError
from ragline.ingest.local import ingest
from ragline.ops import snapshot
from ragline.store.base import SEARCH_MODES

from .conftest import write_docs

pytestmark = pytest.mark.slow

QUESTIONS = ["Which animal reads maps?", "pangolin at dawn", "knitting sweaters for owls", "lighthouses in fog"]


def results(comp: Components) -> dict[tuple[str, str], list[tuple[str, float]]]:
    out = {}
    for q in QUESTIONS:
        vector = comp.embedder.embed_query(q)
        for mode in SEARCH_MODES:
            hits = comp.store.search(vector, 5, text=q, mode=mode)
            out[(q, mode)] = [(h.chunk.id, round(h.score, 5)) for h in hits]
    return out


def test_restore_is_verified_and_undoes_later_changes(docs: Path, comp: Components, tmp_path: Path) -> None:
    ingest([docs], comp)
    root = tmp_path / "snapshots"
    before_count, before_points, before = comp.store.count(), dict(comp.store.points()), results(comp)

    manifest = snapshot.create(comp.store, root, "before-edit", comp.embedder.embed_query)
    assert (manifest.points, manifest.documents) == (5, 5)
    assert {p.mode for p in manifest.probes} == set(SEARCH_MODES) and all(p.ids for p in manifest.probes)
    assert [m.name for m in snapshot.list_snapshots(root)] == ["before-edit"]

    # after the snapshot: a new document, an edited one, a deleted one
    (docs / "zeta.md").write_text("# Zeta\n\n## Birds\n\nThe amber puffin counts pebbles.\n", encoding="utf-8")
    (docs / "alpha.md").write_text("# Alpha guide\n\n## Setup\n\nA quiet quarry.\n", encoding="utf-8")
    (docs / "beta.md").unlink()
    changed = ingest([docs], comp)
    assert (changed.added, changed.updated, changed.deleted) == (1, 1, 1)
    assert results(comp) != before

    report = snapshot.restore(comp.store, root, "before-edit", comp.embedder.embed_query)

    assert report.probes_checked == len(manifest.probes)
    assert comp.store.count() == before_count
    assert dict(comp.store.points()) == before_points
    assert results(comp) == before
    assert not any("puffin" in str(p.get("text")) for _, p in comp.store.points())


def test_restore_refuses_a_snapshot_that_does_not_match_its_manifest(
    docs: Path, comp: Components, tmp_path: Path
) -> None:
    ingest([docs], comp)
    root = tmp_path / "snapshots"
    snapshot.create(comp.store, root, "s1")  # BM25 probes only, without an embedding function
    manifest_file = root / "s1" / snapshot.MANIFEST
    data = json.loads(manifest_file.read_text())
    data["points"] += 1
    data["probes"][0]["ids"] = [*reversed(data["probes"][0]["ids"]), "not-a-chunk"]
    manifest_file.write_text(json.dumps(data))
    with pytest.raises(StoreError, match="does not match its manifest") as err:
        snapshot.restore(comp.store, root, "s1")
    assert "6 points" not in str(err.value) and "5 points, the snapshot had 6" in str(err.value)
    assert "returned other chunks" in str(err.value)


def test_names_are_checked_and_never_reused(docs: Path, comp: Components, tmp_path: Path) -> None:
    ingest([docs], comp)
    root = tmp_path / "snapshots"
    snapshot.create(comp.store, root, "daily")
    with pytest.raises(BadRequestError, match="already exists"):
        snapshot.create(comp.store, root, "daily")
    for bad in ("../escape", ".hidden", "a/b", ""):
        with pytest.raises(BadRequestError):
            snapshot.check_name(bad)
    with pytest.raises(BadRequestError, match="daily"):  # the message lists the snapshots there are
        snapshot.restore(comp.store, root, "weekly")
    assert not any(p.name.startswith(".") for p in root.iterdir())  # no partial snapshot left behind


# Documents sharing a body: their chunks tie on every score, so a search returns them in any order.
TWINS = {f"twin{i}.md": "# Twin page\n\n## Shared\n\nThe amber heron guards the ferry at night.\n" for i in range(6)}


def test_an_untouched_snapshot_passes_its_check_on_every_restore(docs: Path, comp: Components, tmp_path: Path) -> None:
    write_docs(docs, TWINS)
    ingest([docs], comp)
    for i in range(3):  # more writes, more segments: ties then come back from several of them
        (docs / f"extra{i}.md").write_text(TWINS["twin0.md"], encoding="utf-8")
        ingest([docs], comp)
    root = tmp_path / "snapshots"
    manifest = snapshot.create(comp.store, root, "daily", comp.embedder.embed_query)
    twin = "The amber heron guards the ferry at night."
    assert any(twin in p.query for p in manifest.probes)  # a probe meets the tied chunks
    scores = [h.score for h in comp.store.search(comp.embedder.embed_query(twin), 5, text=twin, mode="bm25")]
    assert len(set(scores)) == 1

    for _ in range(10):
        report = snapshot.restore(comp.store, root, "daily", comp.embedder.embed_query)
        assert report.probes_checked == len(manifest.probes)
    assert comp.store.count() == manifest.points


def test_a_probe_accepts_reordered_ties_and_float_noise_but_not_other_results() -> None:
    probe = snapshot.Probe("q", "dense", ["a", "b", "c", "d"], [0.9, 0.5, 0.5, 0.5])
    assert probe.matches([("a", 0.9 + 1e-7), ("c", 0.5), ("b", 0.5 - 1e-7), ("d", 0.5)])
    assert probe.matches([("a", 0.9), ("b", 0.5), ("c", 0.5), ("e", 0.5)])  # another of the tied ones kept
    assert not probe.matches([("a", 0.9), ("b", 0.5), ("c", 0.5), ("e", 0.4)])  # e is not tied with d
    assert not probe.matches([("b", 0.9), ("a", 0.5), ("c", 0.5), ("d", 0.5)])  # a and b are not tied
    assert not probe.matches([("a", 0.9), ("b", 0.5), ("c", 0.5)])
    fused = snapshot.Probe("q", "hybrid", ["a", "b", "c"], [0.033, 0.032, 0.031])
    assert fused.matches([("b", 0.033), ("a", 0.032), ("x", 0.031)])
    assert not fused.matches([("x", 0.033), ("y", 0.032), ("a", 0.031)])


FOREIGN = {
    f"other{i}.md": f"# Other {i}\n\n## Notes\n\nThe teal otter number {i} sorts river stones.\n" for i in range(5)
}


def test_a_foreign_index_under_a_genuine_manifest_is_refused_and_the_index_stays(
    docs: Path, comp: Components, tmp_path: Path
) -> None:
    ingest([docs], comp)
    root = comp.settings.layout.snapshots  # where the CLI looks for them
    snapshot.create(comp.store, root, "genuine", comp.embedder.embed_query)
    # Another index of as many documents and chunks, put in the place of the snapshot's copy.
    other = Components(load_settings(data_dir=tmp_path / "other-data"))
    try:
        ingest([write_docs(tmp_path / "other", FOREIGN)], other)
        snapshot.create(other.store, tmp_path / "other-snapshots", "foreign")
    finally:
        other.close()
    shutil.rmtree(root / "genuine" / snapshot.INDEX)
    shutil.copytree(tmp_path / "other-snapshots" / "foreign" / snapshot.INDEX, root / "genuine" / snapshot.INDEX)

    (docs / "zeta.md").write_text("# Zeta\n\n## Birds\n\nThe amber puffin counts pebbles.\n", encoding="utf-8")
    ingest([docs], comp)  # the index now differs from every snapshot: it is what must survive
    before_points, before = dict(comp.store.points()), results(comp)
    before_docs = {(d.doc_id, d.doc_hash) for d in comp.store.documents()}

    with pytest.raises(StoreError, match="does not match its manifest") as err:
        snapshot.restore(comp.store, root, "genuine", comp.embedder.embed_query)
    assert dict(comp.store.points()) == before_points  # the previous index, not the foreign one
    assert {(d.doc_id, d.doc_hash) for d in comp.store.documents()} == before_docs
    assert results(comp) == before
    assert "index is unchanged" in str(err.value) and "other documents" in str(err.value)
    hits = comp.store.search(comp.embedder.embed_query("puffin pebbles"), 1, text="puffin pebbles", mode="hybrid")
    assert "puffin" in hits[0].chunk.text
    assert not [
        p for p in comp.settings.data_dir.rglob(".*") if p.name.endswith((".restoring", ".replaced"))
    ]  # no stage left

    # The same as a user runs it: one line, a non-zero exit, and the index still serving afterwards.
    comp.close()
    data = comp.settings.data_dir
    env = {**os.environ, "RAGLINE_DATA_DIR": str(data)}
    cli = [sys.executable, "-m", "ragline.cli"]
    r = subprocess.run([*cli, "snapshot", "restore", "genuine", "--yes"], capture_output=True, text=True, env=env)
    assert r.returncode == 4 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "not restored" in r.stderr
    found = subprocess.run(
        [*cli, "search", "puffin pebbles", "--json", "-k", "1"], capture_output=True, text=True, env=env
    )
    assert found.returncode == 0 and "zeta.md" in found.stdout, found.stderr
