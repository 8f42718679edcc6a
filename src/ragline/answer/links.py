"""Where a citation points when it is shown: relative sources are joined onto a base URL, or left as paths."""

from __future__ import annotations

import re
from urllib.parse import urljoin

_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def is_relative(source: str) -> bool:
    """A source with no scheme and no leading slash (``docs/guide.md#setup``): it names a place only under
    some base, which the index does not know."""
    return not _SCHEME.match(source) and not source.startswith(("/", "\\"))


def citation_link(source: str, base_url: str | None) -> str:
    """``source`` as a reader should follow it: joined onto ``base_url`` when it is relative and a base is
    set (``answer.citation_base_url``), else as it is (a web URL, a local path, or a relative path)."""
    if base_url and is_relative(source):
        return urljoin(base_url, source)
    return source
