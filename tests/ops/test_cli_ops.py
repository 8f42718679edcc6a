"""``ragline delete`` and ``ragline snapshot`` as a user runs them: real subprocesses, JSON out, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import write_docs

pytestmark = pytest.mark.slow


def ragline(*args: str, data_dir: Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ragline.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "RAGLINE_DATA_DIR": str(data_dir)},
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        timeout=600,
    )


def sources(data: Path, query: str) -> set[str]:
    r = ragline("search", query, "--json", "-k", "5", data_dir=data)
    assert r.returncode == 0, r.stderr
    return {Path(h["source"].split("#")[0]).name for h in json.loads(r.stdout)["hits"]}


def test_delete_and_snapshot_commands(tmp_path: Path) -> None:
    docs, data = write_docs(tmp_path / "docs"), tmp_path / "data"
    assert ragline("delete", "--source", str(docs), "--yes", data_dir=data).returncode == 4  # no index yet
    assert ragline("ingest", str(docs), "--json", data_dir=data).returncode == 0

    refused = ragline("delete", "--source", "old", data_dir=data, cwd=docs)  # no --yes, no terminal
    assert refused.returncode == 2 and "--yes" in refused.stderr
    deleted = ragline("delete", "--source", "old/", "--yes", "--json", data_dir=data, cwd=docs)  # relative folder
    assert deleted.returncode == 0, deleted.stderr
    assert json.loads(deleted.stdout) == {"prefix": f"{docs.resolve().as_posix()}/old/", "documents": 2, "chunks": 2}
    assert not sources(data, "obsidian marmot knits sweaters") & {"gamma.md", "delta.md"}
    nothing = ragline("delete", "--source", "https://nowhere.example/", "--json", data_dir=data)
    assert nothing.returncode == 1 and json.loads(nothing.stdout)["chunks"] == 0  # a typo says so
    assert "nothing in the index under https://nowhere.example/" in nothing.stderr
    allowed = ragline("delete", "--source", "https://nowhere.example/", "--allow-none", data_dir=data)
    assert allowed.returncode == 0 and "nothing in the index" in allowed.stderr

    created = ragline("snapshot", "create", "s1", "--json", data_dir=data)
    assert created.returncode == 0, created.stderr
    assert (json.loads(created.stdout)["points"], json.loads(created.stdout)["documents"]) == (3, 3)
    listed = json.loads(ragline("snapshot", "list", "--json", data_dir=data).stdout)["snapshots"]
    assert [(s["name"], s["points"]) for s in listed] == [("s1", 3)]

    gone = ragline("delete", "--source", str(docs / "alpha.md"), "--yes", data_dir=data)
    assert gone.returncode == 0 and "deleted 1 chunks of 1 documents" in gone.stdout
    assert "alpha.md" not in sources(data, "vermilion pangolin sings at dawn")

    restored = ragline("snapshot", "restore", "s1", "--yes", "--json", data_dir=data)
    assert restored.returncode == 0, restored.stderr
    body = json.loads(restored.stdout)
    assert body["verified"] is True and body["points"] == 3 and body["probes_checked"] > 0
    assert "alpha.md" in sources(data, "vermilion pangolin sings at dawn")

    missing = ragline("snapshot", "restore", "nope", "--yes", data_dir=data)
    assert missing.returncode == 2 and "s1" in missing.stderr


def test_delete_with_forget_also_removes_the_crawled_copies(tmp_path: Path) -> None:
    from ragline.sources.pagestore import PageStore, read_manifest

    docs, data = write_docs(tmp_path / "docs"), tmp_path / "data"
    assert ragline("ingest", str(docs), "--json", data_dir=data).returncode == 0
    site = "https://docs.example.org/guide/"
    pages = PageStore(data / "crawl", origin=site)
    for name in ("keep.html", "secret/a.html", "secret/b.html"):
        pages.save(site + name, site + name, 200, {"content-type": "text/html"}, f"<p>{name}</p>".encode())
    pages.commit(drop_unseen=False)

    plain = ragline("delete", "--source", site + "secret/", "--yes", "--json", "--allow-none", data_dir=data)
    assert plain.returncode == 0 and "cached_removed" not in json.loads(plain.stdout)
    assert len(read_manifest(data / "crawl")) == 3  # without --forget the crawl folder is left alone

    forgot = ragline("delete", "--source", site + "secret/", "--forget", "--yes", "--json", data_dir=data)
    assert forgot.returncode == 0, forgot.stderr
    assert json.loads(forgot.stdout)["cached_removed"] == 2
    left = read_manifest(data / "crawl")
    assert [e.url for e in left] == [site + "keep.html"]
    assert sorted(p.name for p in (data / "crawl").rglob("*.html")) == ["keep.html"]


def test_a_folder_of_pages_with_canonical_urls_is_deleted_by_the_folder(tmp_path: Path) -> None:
    site, data = tmp_path / "site", tmp_path / "data"
    site.mkdir()
    for name, words in (("a", "vermilion pangolin"), ("b", "obsidian marmot")):
        canonical = f'<link rel="canonical" href="https://docs.example.org/{name}.html">'
        body = f"<html><head>{canonical}</head><body><main><p>The {words} sings at dawn.</p></main></body></html>"
        (site / f"{name}.html").write_text(body)
    assert ragline("ingest", str(site), "--json", data_dir=data).returncode == 0
    assert {"a.html", "b.html"} <= sources(data, "pangolin marmot sings at dawn")
    deleted = ragline("delete", "--source", str(site), "--yes", "--json", data_dir=data)
    assert deleted.returncode == 0, deleted.stderr
    assert json.loads(deleted.stdout)["documents"] == 2
    r = ragline("search", "pangolin sings", "--json", data_dir=data)
    assert r.returncode == 4 or json.loads(r.stdout)["hits"] == []  # an empty index, or no hit: both gone


def test_sources_of_a_relative_url_template_are_deleted_by_their_source(tmp_path: Path) -> None:
    # As `make run` ingests: sources "docs/old/gamma.md", while ./docs/old is also a folder on disk here.
    write_docs(tmp_path / "docs")
    data = tmp_path / "data"
    r = ragline("ingest", "docs", "--url-template", "docs/{path}", "--json", data_dir=data, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    deleted = ragline("delete", "--source", "docs/old/", "--yes", "--json", data_dir=data, cwd=tmp_path)
    assert deleted.returncode == 0, deleted.stderr
    assert json.loads(deleted.stdout) == {"prefix": "docs/old/", "documents": 2, "chunks": 2}


def test_delete_is_scoped_to_a_tenant_or_says_all_tenants(tmp_path: Path) -> None:
    """Tenants share an index and a prefix may hold several tenants' copies: a delete names whose it removes."""
    data = tmp_path / "data"
    for tenant in ("acme", "globex"):
        (tmp_path / tenant).mkdir()
        (tmp_path / tenant / "guide.md").write_text(f"# Guide\n\nThe {tenant} widget is blue.\n", encoding="utf-8")
        ingest = ragline(
            "ingest", str(tmp_path / tenant), "--tenant", tenant, "--url-template", "https://docs.x/{path}",
            data_dir=data,
        )  # fmt: skip
        assert ingest.returncode == 0, ingest.stderr

    unsaid = ragline("delete", "--source", "https://docs.x/", "--yes", data_dir=data)
    assert unsaid.returncode == 2 and "2 tenant(s)" in unsaid.stderr and "--all-tenants" in unsaid.stderr
    assert len(unsaid.stderr.strip().splitlines()) == 1

    acme = ragline("delete", "--source", "https://docs.x/", "--tenant", "acme", "--yes", "--json", data_dir=data)
    assert acme.returncode == 0, acme.stderr
    assert json.loads(acme.stdout) | {"chunks": 0} == {
        "prefix": "https://docs.x/",
        "tenant": "acme",
        "documents": 1,
        "chunks": 0,
    }
    left = ragline("search", "widget", "--json", data_dir=data)
    assert {h["text"].split()[1] for h in json.loads(left.stdout)["hits"]} == {"globex"}

    rest = ragline("delete", "--source", "https://docs.x/", "--all-tenants", "--yes", "--json", data_dir=data)
    assert rest.returncode == 0 and json.loads(rest.stdout)["documents"] == 1, rest.stderr


def test_search_output_shows_control_characters_from_documents_as_escapes(tmp_path: Path) -> None:
    """A hostile file name or heading must not drive the terminal that prints the results."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "\x1b[2J\x1b]0;owned\x07guide.md").write_text(
        "# \x1b[31mWidgets\x1b[0m\n\nThe widget is calibrated with the blue lever.\n", encoding="utf-8"
    )
    data = tmp_path / "data"
    assert ragline("ingest", str(docs), data_dir=data).returncode == 0
    for command in (["search", "calibrate the widget"], ["ask", "How is the widget calibrated?"]):
        shown = ragline(*command, data_dir=data)
        assert shown.returncode == 0, shown.stderr
        assert "blue lever" in shown.stdout
        assert not any(c in shown.stdout for c in "\x1b\x07\x9b"), repr(shown.stdout)
