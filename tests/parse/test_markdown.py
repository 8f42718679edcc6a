"""Markdown, MDX and MyST: sections at headings, anchors as the rendering site makes them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ragline.config import ParseSettings
from ragline.parse import kind_for, parse_bytes
from ragline.parse.markdown import is_myst, parse_markdown, strip_mdx
from ragline.records import Document

SETTINGS = ParseSettings()


def _parse_file(path: Path) -> Document:
    kind = kind_for(path)
    assert kind is not None
    return parse_bytes(path.read_bytes(), source=path.as_uri(), kind=kind, settings=SETTINGS, path=str(path))


@pytest.fixture(scope="module")
def lcel_src(corpora: Path) -> Path:
    return corpora / "langchain-lcel" / "src" / "expression_language"


# ----------------------------------------------------------------------------- LCEL sources


def test_all_lcel_sources_parse(lcel_src: Path) -> None:
    files = sorted(p for p in lcel_src.rglob("*") if p.is_file())
    assert len(files) == 26
    docs = {p.relative_to(lcel_src).as_posix(): _parse_file(p) for p in files}
    empty = sorted(name for name, doc in docs.items() if not doc.sections)
    assert empty == ["how_to/index.mdx"]  # a title and a <DocCardList />, nothing else
    for name, doc in docs.items():
        for section in doc.sections:
            assert not re.search(r"^(import|export) ", section.text, re.MULTILINE) or name.endswith(".ipynb")
            assert "<DocCardList" not in section.text and "{/*" not in section.text, name


def test_mdx_imports_jsx_and_front_matter_are_dropped(lcel_src: Path) -> None:
    raw = (lcel_src / "cookbook" / "index.mdx").read_text(encoding="utf-8")
    assert re.search(r"^import DocCardList", raw, re.MULTILINE) and "<DocCardList />" in raw
    doc = _parse_file(lcel_src / "cookbook" / "index.mdx")
    assert doc.title == "Cookbook"
    assert [s.anchor for s in doc.sections] == ["cookbook"]
    assert "DocCardList" not in doc.text and "sidebar_position" not in doc.text
    # Links become their text.
    assert "the Prompt + LLM page is a good place to start" in doc.text
    assert "](/docs" not in doc.text


def test_mdx_index_page(lcel_src: Path) -> None:
    doc = _parse_file(lcel_src / "index.mdx")
    assert doc.title == "LangChain Expression Language (LCEL)"
    assert doc.sections[0].anchor == "langchain-expression-language-lcel"
    assert "sidebar_class_name" not in doc.text and "<" not in doc.text


def test_lcel_notebook_anchors_match_the_site(lcel_src: Path, corpora: Path) -> None:
    doc = _parse_file(lcel_src / "how_to" / "binding.ipynb")
    anchors = [s.anchor for s in doc.sections]
    assert anchors == ["bind-runtime-args", "attaching-openai-functions", "attaching-openai-tools"]
    site = (corpora / "langchain-lcel/site/docs/expression_language/how_to/binding/index.html").read_text()
    assert all(f'id="{a}"' in site for a in anchors)


def test_repeated_headings_are_numbered_like_docusaurus(lcel_src: Path) -> None:
    anchors = [s.anchor for s in _parse_file(lcel_src / "why.ipynb").sections]
    assert anchors.count("lcel") == 1 and "lcel-1" in anchors and "without-lcel-2" in anchors
    assert len(anchors) == len(set(anchors))


# ----------------------------------------------------------------------------- rules, on small texts


def test_atx_setext_custom_ids_and_front_matter() -> None:
    text = (
        "---\ntitle: From Front Matter\nsidebar_position: 2\n---\nintro\n\n"
        "# Main {#custom-main}\n\nbody\n\nSub Part\n--------\n\nmore\n"
    )
    doc = parse_markdown(text, source="s")
    assert doc.title == "From Front Matter"
    assert [(s.title, s.anchor, s.level) for s in doc.sections] == [
        ("From Front Matter", None, 1),
        ("Main", "custom-main", 1),
        ("Sub Part", "sub-part", 2),
    ]
    assert "sidebar_position" not in doc.text


def test_inline_markup_becomes_plain_text() -> None:
    doc = parse_markdown(
        "# T\n\nSee [the guide](http://x/g) and ![a diagram](d.png), **bold** `code` <kbd>Ctrl</kbd>.\n\n"
        "| a | b |\n|---|---|\n| 1 | 2 |\n\n```python\ndef f():\n    return 1\n```\n",
        source="s",
    )
    assert doc.text == "See the guide and a diagram, bold code Ctrl.\na | b\n1 | 2\ndef f():\n    return 1"


def test_github_style_by_default_and_duplicates() -> None:
    doc = parse_markdown("# ray.init and user_config\n\nx\n\n## Setup\n\ny\n\n## Setup\n\nz\n", source="s")
    assert [s.anchor for s in doc.sections] == ["rayinit-and-user_config", "setup", "setup-1"]


def test_myst_files_use_sphinx_ids_and_hide_targets() -> None:
    text = (
        "(serve-label)=\n\n# ray.init and user_config\n\n"
        "body {ref}`the guide <serve-guide>` and {py:class}`~ray.serve.Deployment`\n\n"
        "## Using Ray's logger\n\nz\n"
    )
    assert is_myst(text)
    doc = parse_markdown(text, source="s")
    assert [s.anchor for s in doc.sections] == ["ray-init-and-user-config", "using-rays-logger"]
    assert doc.sections[0].text == "body the guide and Deployment"
    assert "serve-label" not in doc.text
    assert parse_markdown(text, source="s", style="github").sections[0].anchor == "rayinit-and-user_config"


def test_myst_directives_keep_what_readers_see() -> None:
    text = """(x)=
# Title

```{note}
:class: dropdown
A note body with {ref}`a link <target>`.
```

```{toctree}
:maxdepth: 2

page-one
page-two
```

```{code-block} python
:emphasize-lines: 1

print("hi")
```

```{literalinclude} ../code/example.py
:language: python
```

::::{tab-set}
:::{tab-item} MacOS
brew install graphviz
:::
:::{tab-item} Linux
apt-get install graphviz
:::
::::

```{admonition} Heads up
:class: tip
Admonition body.
```

```{eval-rst}
.. note::

   An rst note with :ref:`Text <target>`.
```

:::tip Docusaurus title
Tip body.
:::
"""
    doc = parse_markdown(text, source="s")
    assert doc.text.split("\n") == [
        "A note body with a link.",
        'print("hi")',
        "MacOS",
        "brew install graphviz",
        "Linux",
        "apt-get install graphviz",
        "Heads up",
        "Admonition body.",
        "An rst note with Text.",
        "Docusaurus title",
        "Tip body.",
    ]


def test_sphinx_design_cards_and_html_in_arguments() -> None:
    text = (
        "(x)=\n# T\n\n```{dropdown} <img src='logo.svg' alt='ray'> Data: Datasets\n"
        "Body.\n\n```{button-ref} data-guide\nLearn more\n```\n```\n"
    )
    doc = parse_markdown(text, source="s")
    assert doc.text == "Data: Datasets\nBody.\nLearn more"


def test_strip_mdx_keeps_imports_inside_code() -> None:
    text = "import X from '@theme/X';\nexport const y = 1;\n\n```python\nimport os\n```\n{/* hidden */}\ntext"
    assert strip_mdx(text) == "\n```python\nimport os\n```\n\ntext"


def test_hostile_markdown_does_not_crash() -> None:
    parse_markdown("> " * 3000 + "quote", source="s")
    parse_markdown("```{note}\n" * 200 + "x", source="s")
    parse_markdown("::::{note}\n" * 50 + "x", source="s")
    doc = parse_markdown("".join("  " * i + "- item\n" for i in range(500)), source="s")
    assert "item" in doc.text


def test_jsx_tags_vanish_but_their_text_stays() -> None:
    text = (
        'import Tabs from "@theme/Tabs";\n\n# T\n\n<Tabs>\n<TabItem value="py" label="Python">\n\n'
        "Inner **text**.\n\n</TabItem>\n</Tabs>\n\n<ColumnContainer><Column>Column text</Column></ColumnContainer>\n\n"
        '<DocCardList />\n\nInline <Badge text="x" /> end.\n'
    )
    assert parse_markdown(text, source="s", mdx=True).text == "Inner text.\nColumn text\nInline end."
