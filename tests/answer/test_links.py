"""Where a shown citation points: relative sources under answer.citation_base_url, or left as paths."""

from __future__ import annotations

import pytest

from ragline.answer.links import citation_link
from ragline.config import load_settings
from ragline.errors import ConfigError

BASE = "https://github.com/acme/widgets/blob/main/"


@pytest.mark.parametrize(
    ("source", "base", "shown"),
    [
        ("docs/guide.md#setup", None, "docs/guide.md#setup"),  # a path, never resolved against a server
        ("docs/guide.md#setup", BASE, BASE + "docs/guide.md#setup"),
        ("https://docs.acme.example/a.html#b", BASE, "https://docs.acme.example/a.html#b"),
        ("/srv/docs/guide.md", BASE, "/srv/docs/guide.md"),  # a file on the indexing machine stays one
        ("javascript:alert(1)", BASE, "javascript:alert(1)"),  # another scheme is not joined on
    ],
)
def test_citation_link(source: str, base: str | None, shown: str) -> None:
    assert citation_link(source, base) == shown


def test_the_base_url_setting_is_a_folder_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAGLINE_ANSWER__CITATION_BASE_URL", "https://github.com/acme/widgets/blob/main")
    base = load_settings().answer.citation_base_url
    assert base == BASE  # without the slash, docs/a.md would replace "main"
    assert citation_link("docs/a.md", base) == BASE + "docs/a.md"
    monkeypatch.setenv("RAGLINE_ANSWER__CITATION_BASE_URL", "docs.acme.example")
    with pytest.raises(ConfigError, match="RAGLINE_ANSWER__CITATION_BASE_URL"):
        load_settings()


def test_the_web_page_carries_the_base_url_as_text() -> None:
    from ragline.web import page_html

    assert '<meta name="ragline-citation-base" content="">' in page_html(None)
    page = page_html('https://docs.example/"><script>alert(1)</script>/')
    assert "<script>alert" not in page and 'content="https://docs.example/&quot;&gt;&lt;script&gt;' in page
