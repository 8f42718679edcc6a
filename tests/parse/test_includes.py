"""Included files: ``literalinclude`` code and ``include`` fragments, read as Sphinx reads them, and no further."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ragline.components import Components
from ragline.config import ParseSettings, load_settings
from ragline.ingest.local import ingest
from ragline.parse import parse_bytes
from ragline.parse.includes import IncludeResolver, line_numbers, python_object_lines, select_lines
from ragline.sources.files import LocalFile, load_document

CODE = """\
import ray

# __setup_start__
ray.init()
# __setup_end__


@ray.remote
class Counter:
    def __init__(self):
        self.n = 0

    def incr(self):
        self.n += 1
        return self.n


def helper():
    return 42
"""


def test_line_specs_are_one_based_inclusive_and_clipped() -> None:
    assert line_numbers("1,3", 10) == [0, 2]
    assert line_numbers("2-4", 10) == [1, 2, 3]
    assert line_numbers("8-", 10) == [7, 8, 9]
    assert line_numbers("-2", 10) == [0, 1]
    assert line_numbers("9-20, x, 0", 10) == [8, 9]


def test_markers_lines_and_python_objects_select_what_the_page_shows() -> None:
    assert select_lines(CODE, {"start-after": "__setup_start__", "end-before": "__setup_end__"}) == "ray.init()"
    at = select_lines(CODE, {"start-at": "__setup_start__", "end-at": "__setup_end__"})
    assert at == "# __setup_start__\nray.init()\n# __setup_end__"
    counter = select_lines(CODE, {"pyobject": "Counter"})
    assert counter is not None
    assert counter.startswith("@ray.remote\nclass Counter:") and counter.endswith("return self.n")
    assert select_lines(CODE, {"pyobject": "Counter.incr", "dedent": ""}) == (
        "def incr(self):\n    self.n += 1\n    return self.n"
    )
    assert select_lines(CODE, {"lines": "1", "prepend": "# top", "append": "# end"}) == "# top\nimport ray\n# end"
    assert select_lines(CODE, {"pyobject": "Missing"}) is None
    assert select_lines(CODE, {"start-after": "__no_such_marker__"}) is None
    assert python_object_lines("def broken(:\n", "broken") is None


def _tree(tmp_path: Path) -> tuple[Path, Path]:
    """docs/ (the pages) and code/ (a mirror of docs/ holding the included code), plus a secret beside them."""
    docs, code = tmp_path / "docs", tmp_path / "code"
    (docs / "guide").mkdir(parents=True)
    (code / "guide" / "doc_code").mkdir(parents=True)
    (docs / "_includes").mkdir()
    (code / "guide" / "doc_code" / "counter.py").write_text(CODE)
    (docs / "guide" / "local.py").write_text("print('beside the page')\n")
    (docs / "_includes" / "banner.rst").write_text("Shared banner\n=============\n\nThe banner text.\n")
    (tmp_path / "secret.txt").write_text("TOPSECRET\n")
    (docs / "guide" / "blob.bin").write_bytes(b"\x00\x01binary")
    return docs, code


def test_paths_resolve_like_sphinx_and_never_leave_the_roots(tmp_path: Path) -> None:
    docs, code = _tree(tmp_path)
    page = docs / "guide" / "page.rst"
    resolver = IncludeResolver.for_document(page, docs, [code])
    assert resolver is not None
    assert resolver.locate("local.py") == (docs / "guide" / "local.py").resolve()
    assert resolver.locate("doc_code/counter.py") == (code / "guide" / "doc_code" / "counter.py").resolve()
    assert resolver.locate("/_includes/banner.rst") == (docs / "_includes" / "banner.rst").resolve()
    assert resolver.locate("/guide/doc_code/counter.py") is not None
    for outside in ("../../secret.txt", "/../secret.txt", str(tmp_path / "secret.txt"), "missing.py", ""):
        assert resolver.locate(outside) is None, outside
    os.symlink(tmp_path / "secret.txt", docs / "guide" / "link.txt")
    assert resolver.locate("link.txt") is None  # a link out of the tree is still outside
    assert resolver.read("blob.bin") is None
    small = IncludeResolver.for_document(page, docs, [code])
    assert small is not None
    small.max_bytes = 10
    assert small.read("doc_code/counter.py") is None
    assert IncludeResolver.for_document(None, docs) is None


def test_hidden_files_are_never_included(tmp_path: Path) -> None:
    """A page that names /.env, .git/config or a hidden folder's file gets nothing, in Markdown and rst."""
    docs, code = _tree(tmp_path)
    (docs / ".env").write_text("SECRET_TOKEN=s3cr3t\n")
    (docs / ".git").mkdir()
    (docs / ".git" / "config").write_text("[remote] SECRET_TOKEN=s3cr3t\n")
    (docs / "guide" / ".hidden").mkdir()
    (docs / "guide" / ".hidden" / "key.py").write_text("SECRET_TOKEN = 's3cr3t'\n")
    resolver = IncludeResolver.for_document(docs / "guide" / "page.md", docs, [code])
    assert resolver is not None
    for target in ("/.env", "../.env", "/.git/config", ".hidden/key.py", "/guide/.hidden/key.py"):
        assert resolver.locate(target) is None, target
    os.symlink(docs / ".env", docs / "guide" / "env.txt")  # a visible name for a hidden file
    assert resolver.locate("env.txt") is None
    md = "# Page\n\nBody.\n\n```{literalinclude} /.env\n```\n\n```{literalinclude} .hidden/key.py\n```\n"
    rst = "Page\n====\n\nBody.\n\n.. literalinclude:: /.env\n\n.. include:: /.git/config\n"
    for relpath, text in (("guide/page.md", md), ("guide/page.rst", rst)):
        parsed = _parse(docs, code, relpath, text)
        assert "Body." in parsed and "s3cr3t" not in parsed, parsed


def _parse(docs: Path, code: Path, relpath: str, text: str, extra: list[Path] | None = None) -> str:
    path = docs / relpath
    path.write_text(text)
    settings = ParseSettings(include_paths=[code] if extra is None else extra)
    doc = load_document(LocalFile(path=path, root=docs, relpath=relpath), settings)
    return "\n".join(f"[{s.title}#{s.anchor}]\n{s.text}" for s in doc.sections)


def test_rst_literalinclude_shows_the_code_and_include_parses_the_fragment(tmp_path: Path) -> None:
    docs, code = _tree(tmp_path)
    text = _parse(
        docs,
        code,
        "guide/page.rst",
        "Guide\n=====\n\n.. include:: /_includes/banner.rst\n\nCounting\n--------\n\n"
        ".. literalinclude:: doc_code/counter.py\n    :language: python\n    :caption: A counter actor\n"
        "    :start-after: __setup_start__\n    :end-before: __setup_end__\n\n"
        ".. literalinclude:: doc_code/counter.py\n    :pyobject: helper\n\n"
        ".. literalinclude:: ../../secret.txt\n\n.. include:: ../../secret.txt\n\nAfter.\n",
    )
    assert "A counter actor\nray.init()" in text
    assert "def helper():\n    return 42" in text
    assert "[Shared banner#shared-banner]\nThe banner text." in text  # the fragment's title is a section
    assert "TOPSECRET" not in text and "literalinclude" not in text and "After." in text
    # Without the mirror folder the code is not found, and the directive shows nothing (no markup either).
    bare = "Guide\n=====\n\n.. literalinclude:: doc_code/counter.py\n\nText.\n"
    plain = _parse(docs, code, "guide/page.rst", bare, [])
    assert "ray.init" not in plain and "literalinclude" not in plain and "Text." in plain


def test_rst_includes_a_markdown_fragment_as_text(tmp_path: Path) -> None:
    docs, code = _tree(tmp_path)
    (docs / "guide" / "note.md").write_text("## Heads up\n\nRead the **upgrade** notes first.\n")
    text = _parse(docs, code, "guide/page.rst", "Page\n====\n\n.. include:: note.md\n   :parser: myst\n\nAfter.\n")
    assert "Heads up\nRead the upgrade notes first.\nAfter." in text and "**" not in text


def test_rst_include_cycles_end(tmp_path: Path) -> None:
    docs, code = _tree(tmp_path)
    (docs / "guide" / "a.rst").write_text("From a.\n\n.. include:: b.rst\n")
    (docs / "guide" / "b.rst").write_text("From b.\n\n.. include:: a.rst\n")
    text = _parse(docs, code, "guide/page.rst", "Page\n====\n\n.. include:: a.rst\n")
    assert "From a." in text and "From b." in text


def test_myst_literalinclude_and_include(tmp_path: Path) -> None:
    docs, code = _tree(tmp_path)
    (docs / "guide" / "more.md").write_text("Learn more in the **other** guide.\n")
    text = _parse(
        docs,
        code,
        "guide/page.md",
        "# Guide\n\n```{literalinclude} doc_code/counter.py\n:language: python\n:pyobject: Counter.incr\n```\n\n"
        "```{literalinclude} doc_code/counter.py\n---\nstart-after: __setup_start__\n"
        "end-before: __setup_end__\n---\n```\n\n"
        "```{include} more.md\n```\n\n```{include} /_includes/banner.rst\n```\n",
    )
    assert "def incr(self):" in text and "def helper" not in text
    assert "ray.init()" in text
    assert "Learn more in the other guide." in text
    assert "The banner text." in text
    assert "{literalinclude}" not in text and ":pyobject:" not in text


def test_pages_without_a_file_include_nothing() -> None:
    doc = parse_bytes(
        b"Guide\n=====\n\n.. literalinclude:: /etc/hostname\n\n.. include:: /etc/hostname\n\nText.\n",
        source="https://example.org/guide.html",
        kind="rst",
        settings=ParseSettings(),
    )
    assert [s.text for s in doc.sections] == ["Text."]


def test_a_changed_included_file_updates_its_page_on_the_next_ingest(tmp_path: Path) -> None:
    docs, code = _tree(tmp_path)
    (docs / "guide" / "page.rst").write_text(
        "Guide\n=====\n\nThe counter:\n\n.. literalinclude:: doc_code/counter.py\n    :pyobject: Counter\n"
    )
    (docs / "guide" / "other.md").write_text("# Other\n\nNothing included here.\n")
    settings = load_settings(data_dir=tmp_path / "data")
    settings.parse.include_paths = [code]
    comp = Components(settings)
    try:
        first = ingest([docs], comp)
        assert first.added == 3 and not first.skipped  # page.rst, other.md, _includes/banner.rst
        hits = comp.retriever.search("increment the counter actor", k=1)
        assert "self.n += 1" in hits[0].chunk.text
        again = ingest([docs], comp)
        assert (again.added, again.updated, again.chunks_written) == (0, 0, 0)
        target = code / "guide" / "doc_code" / "counter.py"
        target.write_text(CODE.replace("self.n += 1", "self.n += 2"))
        changed = ingest([docs], comp)
        assert (changed.added, changed.updated, changed.unchanged) == (0, 1, 2)
        texts = [p["text"] for _, p in comp.store.points() if p.get("source", "").endswith("page.rst")]
        assert any("self.n += 2" in t for t in texts) and not any("self.n += 1" in t for t in texts)
    finally:
        comp.close()


@pytest.fixture(scope="module")
def ray_root(corpora: Path) -> Path:
    return corpora / "ray-docs"


def test_ray_pages_show_their_included_code(corpora: Path, ray_root: Path) -> None:
    settings = ParseSettings(include_paths=[corpora / "ray-docs-code"])
    rel = "serve/model_composition.md"
    with_code = load_document(LocalFile(path=ray_root / rel, root=ray_root, relpath=rel), settings)
    without = load_document(LocalFile(path=ray_root / rel, root=ray_root, relpath=rel), ParseSettings())
    assert "class SpanishResponder" in with_code.text and "class SpanishResponder" not in without.text
    assert with_code.content_hash != without.content_hash
