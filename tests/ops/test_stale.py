"""No stale chunk is ever retrievable: after a document is edited, its file deleted, or its source deleted with
``delete_sources``, its old text is found by no search mode (dense, BM25, hybrid), at any depth."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragline.components import Components
from ragline.ingest.local import ingest
from ragline.ops.delete import delete_sources
from ragline.store.base import SEARCH_MODES

pytestmark = pytest.mark.slow

EDITED_OLD = "vermilion pangolin sings at dawn"
EDITED_NEW = "turquoise heron sleeps at noon"
REMOVED_FILE = "saffron walrus juggles ice cubes"
DELETED_PREFIX = ("obsidian marmot knits woollen sweaters", "cobalt tapir paints lighthouses")
KEPT = "indigo lynx reads ancient maps"


def texts_found(comp: Components, phrase: str) -> list[str]:
    """The chunk texts every search mode returns for ``phrase``, as deep as the whole index."""
    store = comp.store
    depth = max(1, store.count())
    vector = comp.embedder.embed_query(phrase)
    found = []
    for mode in SEARCH_MODES:
        found += [h.chunk.text for h in store.search(vector, depth, text=phrase, mode=mode)]
    return found


def top(comp: Components, phrase: str, mode: str) -> str:
    vector = comp.embedder.embed_query(phrase)
    return comp.store.search(vector, 1, text=phrase, mode=mode)[0].chunk.text  # type: ignore[arg-type]


def test_no_stale_chunk_after_edit_removal_and_delete(docs: Path, comp: Components) -> None:
    first = ingest([docs], comp)
    assert first.added == 5 and not first.skipped
    for phrase in (EDITED_OLD, REMOVED_FILE, *DELETED_PREFIX):
        for mode in SEARCH_MODES:  # each phrase is found, first, in every mode before the changes
            assert phrase in top(comp, phrase, mode), (phrase, mode)

    (docs / "alpha.md").write_text(
        f"# Alpha guide\n\n## Setup\n\nThe {EDITED_NEW} beside the quarry.\n", encoding="utf-8"
    )
    (docs / "beta.md").unlink()
    second = ingest([docs], comp)
    assert (second.updated, second.deleted, second.unchanged) == (1, 1, 3)

    report = delete_sources(comp.store, (docs / "old").resolve().as_posix())
    assert (report.documents, report.chunks) == (2, 2)

    for phrase in (EDITED_OLD, REMOVED_FILE, *DELETED_PREFIX):
        stale = [t for t in texts_found(comp, phrase) if any(p in t for p in (phrase, *DELETED_PREFIX))]
        assert stale == [], phrase
    assert not any(
        old in str(payload.get("text", ""))
        for _, payload in comp.store.points()
        for old in (EDITED_OLD, REMOVED_FILE, *DELETED_PREFIX)
    )
    for phrase in (EDITED_NEW, KEPT):
        for mode in SEARCH_MODES:
            assert phrase in top(comp, phrase, mode), (phrase, mode)
    assert comp.store.count() == 2
    assert {Path(d.source).name for d in comp.store.documents()} == {"alpha.md", "epsilon.md"}


def test_an_update_never_shows_both_versions(docs: Path, comp: Components) -> None:
    ingest([docs], comp)
    for n in range(3):  # edit the same document again and again: one version at a time in the index
        (docs / "alpha.md").write_text(f"# Alpha guide\n\n## Setup\n\nRevision {n} of the heron.\n", encoding="utf-8")
        ingest([docs], comp)
        alpha = [p for _, p in comp.store.points() if p["source"].endswith("alpha.md")]
        assert [p["text"] for p in alpha] == [f"Revision {n} of the heron."]
        assert len({p["doc_hash"] for p in alpha}) == 1
