"""Snapshots of a real index (bundled model, embedded engine): a restore gives back the same counts and the same
search results, changes made after the snapshot are gone, and a restore that does not match is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ragline.components import Components
from ragline.errors import BadRequestError, StoreError
from ragline.ingest.local import ingest
from ragline.ops import snapshot
from ragline.store.base import SEARCH_MODES

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
