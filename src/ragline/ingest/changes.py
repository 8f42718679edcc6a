"""Change detection: what a document is to the index (added, updated, unchanged), and what left its folder."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable
from enum import StrEnum

from ragline.store.base import StoredDocument


class Change(StrEnum):
    ADDED = "added"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


def change_of(held: Collection[str] | None, doc_hash: str) -> Change:
    """What a document is to an index holding ``held`` hashes for it (a crash can leave two)."""
    if not held:
        return Change.ADDED
    return Change.UNCHANGED if set(held) == {doc_hash} else Change.UPDATED


class IndexState:
    """What the index holds, loaded once per ingest: doc_id -> stored hashes, and origins."""

    def __init__(self, stored: Iterable[StoredDocument], tenant: str | None = None) -> None:
        """Only ``tenant``'s documents count (those ingested without a tenant when None): a run for one
        tenant neither sees nor deletes another's, even from the same folder."""
        self.tenant = tenant
        self.hashes: dict[str, set[str]] = defaultdict(set)
        self.origin: dict[str, str | None] = {}
        self.source: dict[str, str] = {}
        for d in stored:
            if d.tenant != tenant:
                continue
            self.hashes[d.doc_id].add(d.doc_hash)
            self.origin[d.doc_id] = d.origin
            self.source[d.doc_id] = d.source

    def change(self, doc_id: str, doc_hash: str) -> Change:
        return change_of(self.hashes.get(doc_id), doc_hash)

    def gone(self, origins: Iterable[str], seen: set[str]) -> list[str]:
        """Documents indexed from these origins that this run did not see (nor skip)."""
        wanted = set(origins)
        return sorted(d for d, o in self.origin.items() if o in wanted and d not in seen)
