"""A folder is read only inside itself: links that lead out (to a file or a folder) or to a hidden file are
listed and refused with the reason; links that stay inside are read; following outside links is an opt-in."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragline.components import Components
from ragline.config import ParseSettings, load_settings
from ragline.errors import SourceError
from ragline.ingest.local import read_sources
from ragline.ingest.stages import list_files, load_file
from ragline.sources.files import iter_files, load_document

OUTSIDE = "outside the folder: a link leading out of it"


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    """docs/ with a real page, a link inside, links out (a file, a folder), a link to a hidden file."""
    secret = tmp_path / "elsewhere"
    (secret / "keys").mkdir(parents=True)
    (secret / "passwd").write_text("root:x:0:0:turquoise-secret:/root:/bin/bash\n")
    (secret / "keys" / "id.md").write_text("# Key\n\nturquoise-secret key\n")
    root = tmp_path / "docs"
    root.mkdir()
    (root / "guide.md").write_text("# Guide\n\nThe heron sleeps.\n")
    (root / ".env.md").write_text("# Env\n\nTOKEN=turquoise-secret\n")
    (root / "alias.md").symlink_to(root / "guide.md")
    (root / "passwd.md").symlink_to(secret / "passwd")
    (root / "keys").symlink_to(secret / "keys", target_is_directory=True)
    (root / "env.md").symlink_to(root / ".env.md")
    return root


def _outcomes(root: Path, settings: ParseSettings) -> dict[str, str]:
    out: dict[str, str] = {}
    for file in iter_files([root], follow_outside=settings.follow_outside_links):
        try:
            out[file.relpath] = load_document(file, settings).text
        except SourceError as exc:
            out[file.relpath] = f"skipped: {exc}"
    return out


def test_links_out_of_the_folder_are_refused_with_the_reason(docs: Path) -> None:
    found = _outcomes(docs, ParseSettings())
    assert found["passwd.md"] == f"skipped: {OUTSIDE}"
    assert found["keys"] == f"skipped: {OUTSIDE}"  # the folder link is reported, not walked
    assert found["env.md"] == "skipped: outside the folder: a link to a hidden file"
    assert "heron" in found["alias.md"] or "heron" in found["guide.md"]  # a link inside is read (once)
    assert not any("turquoise-secret" in text for text in found.values())


def test_the_ingest_reports_them_and_indexes_the_rest(docs: Path, tmp_path: Path) -> None:
    comp = Components(load_settings(data_dir=tmp_path / "data"))
    _, loaded = read_sources([docs], comp)
    items = list(loaded)
    errors = {Path(i.fallback_source).name: i.error for i in items if i.error}
    assert errors == {"passwd.md": OUTSIDE, "keys": OUTSIDE, "env.md": "outside the folder: a link to a hidden file"}
    texts = [i.document.text for i in items if i.document is not None]
    assert texts and not any("turquoise-secret" in t for t in texts)
    # The Ray engine's rows carry the same check to its workers.
    _, _, rows = list_files([docs], comp.settings.parse)
    row = next(r for r in rows if r["relpath"] == "passwd.md")
    with pytest.raises(SourceError, match="outside the folder"):
        load_file(row, comp.settings.parse, {})


def test_a_link_that_turns_outward_after_listing_is_refused_when_read(docs: Path, tmp_path: Path) -> None:
    (docs / "other.md").write_text("# Other\n\ntext\n")
    files = {f.relpath: f for f in iter_files([docs])}
    page = files["other.md"]
    page.path.unlink()
    page.path.symlink_to(tmp_path / "elsewhere" / "passwd")
    with pytest.raises(SourceError, match="outside the folder"):
        load_document(page, ParseSettings())


def test_following_outside_links_is_an_explicit_choice(docs: Path) -> None:
    found = _outcomes(docs, ParseSettings(follow_outside_links=True))
    assert "turquoise-secret" in found["passwd.md"] and "turquoise-secret" in found["keys/id.md"]


def test_a_file_named_on_its_own_is_read_where_it_leads(docs: Path) -> None:
    (file,) = iter_files([docs / "passwd.md"])
    assert "turquoise-secret" in load_document(file, ParseSettings()).text


def test_a_folder_link_loop_ends(tmp_path: Path) -> None:
    root = tmp_path / "docs"
    (root / "a").mkdir(parents=True)
    (root / "a" / "page.md").write_text("# Page\n\ntext\n")
    (root / "a" / "up").symlink_to(root, target_is_directory=True)
    assert [f.relpath for f in iter_files([root], follow_outside=True)] == ["a/page.md"]
    assert [f.relpath for f in iter_files([root])] == ["a/page.md"]
