"""Filters as the retriever reads them: shorthands, and the keys and values it refuses with a clear error."""

from __future__ import annotations

import pytest

from ragline.errors import BadRequestError
from ragline.retrieve import normalise_filters
from ragline.store.base import Prefix


def test_shorthands_and_metadata_keys() -> None:
    out = normalise_filters({"source": "https://d/x/", "type": "rst", "team": "a", "metadata.tier": 2})
    assert out == {"source": Prefix("https://d/x/"), "kind": "rst", "metadata.team": "a", "metadata.tier": 2}


@pytest.mark.parametrize(
    "filters",
    [
        {"metadata..tenant": "x"},
        {"a.": "x"},
        {"metadata.": "x"},
        {"": "x"},
        {"a b": "x"},
        {"team": 99999999999999999999999},
        {"team": [1, -(2**64)]},
        {"team": 1.5},
        {"team": {"$ne": 1}},
    ],
)
def test_bad_keys_and_values_are_bad_requests(filters: dict) -> None:  # type: ignore[type-arg]
    with pytest.raises(BadRequestError, match=r"bad (filter key|value for filter)"):
        normalise_filters(filters)
