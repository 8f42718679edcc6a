"""Index generations on a Qdrant server (or a qdrant-client path) with collection aliases.

The configured collection name (``qdrant.collection``, say ``docs``) is an alias; generation N is the
collection ``docs__gen<N>``. Readers query the alias, so a publish (one ``update_collection_aliases`` call
that deletes the alias and creates it on the new collection, applied atomically by Qdrant) moves every
reader at once, with no restart. Each generation's record (state, sources, model, counts, gate result, when)
lives in its collection's metadata under ``ragline_generation``: it is kept by the server with the data it
describes, travels in the collection's snapshots, and goes when the collection is pruned. It is stored as one
JSON string, because Qdrant merges metadata updates key by key and a nested record would keep stale keys.

A collection named ``docs`` made before generations is adopted by the first change that makes one: its
points are copied into ``docs__gen<N>``, then the collection is deleted and the alias created in its place
(two requests: between them, for milliseconds, a reader's request can fail).

Changes are serialised by a lock file in the data dir: one writer per collection at a time, among the
processes that share the data dir.

Crash safety is the shared policy's (``ragline.store.generations``): the alias moves before the record says
``published``, and ``sweep`` deletes what a change that died left. A generation's collection is made before its
record is written, so one without its own record is such a leftover. Deleting a collection is one request (no
trash to sweep), and a gate measures the published collection in place (no baseline copy).
"""

from __future__ import annotations

import json
import logging
import re
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from qdrant_client import QdrantClient, models

from ragline.errors import StoreError
from ragline.records import Chunk
from ragline.store.facade import EngineStore
from ragline.store.files import file_lock
from ragline.store.filters import DENSE
from ragline.store.generations import BUILDING, FAILED, PUBLISHED, Generation, GenerationsBase
from ragline.store.qdrant import QdrantEngine
from ragline.store.sparse import SPARSE, document_vector, sparse_text

log = logging.getLogger(__name__)

SUFFIX = "__gen"
RECORD_KEY = "ragline_generation"


def generation_collection(alias: str, number: int) -> str:
    """The collection holding generation ``number`` of the index named ``alias``."""
    return f"{alias}{SUFFIX}{number}"


class _Sibling(QdrantEngine):
    """Another collection reached through an engine's connection (local mode allows one client per folder)."""

    def __init__(self, parent: QdrantEngine, collection: str) -> None:
        super().__init__(parent.url, parent.api_key, parent.path, collection, parent.timeout, parent.layout)
        self._parent = parent

    def conn(self) -> QdrantClient:
        return self._parent.conn()

    def close(self) -> None:
        self._exists = False  # the connection is the parent's


class AliasGenerations(GenerationsBase):
    """The generations of one alias: collections ``<alias>__gen<N>``, the alias pointing at the published one."""

    def __init__(self, engine: QdrantEngine, lock_dir: Path) -> None:
        self.engine = engine
        self.alias = engine.collection
        self._lock = lock_dir / f".generations-{self.alias}.lock"
        self._pattern = re.compile(re.escape(self.alias + SUFFIX) + r"(\d+)")
        self._pending: dict[int, Generation] = {}  # records of generations whose collection is not made yet

    def name(self, number: int) -> str:
        return generation_collection(self.alias, number)

    def sibling(self, number: int) -> QdrantEngine:
        return _Sibling(self.engine, self.name(number))

    def _collections(self) -> set[str]:
        with self.engine.guard():
            return {c.name for c in self.engine.conn().get_collections().collections}

    def plain(self) -> bool:
        """Is there a collection (not an alias) under the alias's name: an index made before generations?"""
        return self.alias in self._collections()

    def numbers(self) -> list[int]:
        found = {int(m.group(1)) for c in self._collections() if (m := self._pattern.fullmatch(c))}
        return sorted(found | set(self._pending))

    def published(self) -> int | None:
        with self.engine.guard():
            aliases = self.engine.conn().get_aliases().aliases
        target = next((a.collection_name for a in aliases if a.alias_name == self.alias), None)
        if target is None:
            return None
        m = self._pattern.fullmatch(target)
        if m is None:
            raise StoreError(f"the alias {self.alias!r} points at {target!r}, not at a ragline generation")
        return int(m.group(1))

    def read(self, number: int) -> Generation:
        if number in self._pending:
            return self._pending[number]
        published = number == self.published()
        try:
            with self.engine.guard():
                metadata = self.engine.conn().get_collection(self.name(number)).config.metadata or {}
            gen = Generation.from_json(json.loads(metadata[RECORD_KEY]))
            if gen.number != number:  # the record of the generation a restored snapshot was taken from
                raise KeyError(RECORD_KEY)
            return gen
        except KeyError:
            # A collection is made before its record is written: one without a record was left by a change
            # that died in between (``sweep`` deletes it, as the lock says no change runs now).
            return Generation(number, state=PUBLISHED if published else BUILDING)
        except (ValueError, TypeError, StoreError):
            return Generation(number, state=PUBLISHED if published else FAILED)

    def write(self, gen: Generation) -> None:
        name = self.name(gen.number)
        if name not in self._collections():
            self._pending[gen.number] = gen  # written when the collection is made (see made())
            return
        self._pending.pop(gen.number, None)
        with self.engine.guard():
            self.engine.conn().update_collection(name, metadata={RECORD_KEY: json.dumps(gen.to_json())})

    def made(self, number: int) -> None:
        """Generation ``number``'s collection now exists: write its record."""
        if number in self._pending:
            self.write(self._pending[number])

    def locked(self) -> AbstractContextManager[None]:
        busy = f"another ragline process is building or publishing a generation of {self.engine.where}"
        return file_lock(self._lock, busy)

    def holds_index(self, number: int) -> bool:
        with self.engine.guard():
            return self.sibling(number).stored_info() is not None

    def remove(self, number: int) -> None:
        self._pending.pop(number, None)
        with self.engine.guard():
            self.engine.conn().delete_collection(self.name(number))

    def point(self, number: int) -> None:
        """Move the alias: delete and create in one request, which Qdrant applies atomically."""
        operations: list[Any] = []
        if self.published() is not None:
            operations.append(models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=self.alias)))
        operations.append(
            models.CreateAliasOperation(
                create_alias=models.CreateAlias(collection_name=self.name(number), alias_name=self.alias)
            )
        )
        with self.engine.guard():
            if self.plain():  # adopted already (see adopt): the alias takes the collection's name
                self.engine.conn().delete_collection(self.alias)
            self.engine.conn().update_collection_aliases(change_aliases_operations=operations)
        self.engine._exists = False

    def leftovers(self) -> None:
        """Nothing beside the collections: deleting one and moving the alias are one request each, and a gate
        measures the published collection in place (a collection left without its record is swept as building)."""

    def location(self, number: int) -> str:
        return f"{self.engine.url or self.engine.path or ':memory:'} (collection {self.name(number)!r})"

    def adopt(self) -> int | None:
        """Copy a collection made before generations into a first generation and put the alias in its place;
        with neither that collection nor the alias (a migration cut short between its two requests), point the
        alias at the newest generation that was published again."""
        if self.published() is not None:
            return None
        if not self.plain():
            served = [g.number for g in self.all() if g.state == PUBLISHED and self.holds_index(g.number)]
            if served:
                self.point(max(served))
            return max(served, default=None)
        with self.engine.guard():
            info = _Sibling(self.engine, self.alias).stored_info()
        if info is None:
            raise StoreError(
                f"the collection {self.alias!r} was not made by ragline (it records no embedding model): "
                "choose another qdrant.collection, or delete it"
            )
        gen = self.new(note="adopted", model=info.model, state=PUBLISHED)
        target = EngineStore(self.sibling(gen.number))
        try:
            target.open(info)
            copy_points(self.engine, self.alias, self.name(gen.number))
            gen.chunks = target.count()
            gen.documents = len({d.doc_id for d in target.documents()})
            self.write(gen)
        except BaseException:
            self.remove(gen.number)
            raise
        finally:
            target.close()
        self.point(gen.number)
        return gen.number


def copy_points(engine: QdrantEngine, source: str, target: str, page: int = 256) -> int:
    """Copy every point of ``source`` (vectors and payload) into ``target``; returns how many. Qdrant has no
    copy on the server, so the points travel by scroll and upsert; one saved without BM25 gets it here."""
    client, offset, n = engine.conn(), None, 0
    with engine.guard():
        while True:
            records, offset = client.scroll(source, limit=page, offset=offset, with_payload=True, with_vectors=True)
            points = []
            for r in records:
                vectors = r.vector if isinstance(r.vector, dict) else {}
                sparse = vectors.get(SPARSE)
                if not isinstance(sparse, models.SparseVector):
                    v = document_vector(sparse_text(Chunk.from_payload(dict(r.payload or {}))))
                    sparse = models.SparseVector(indices=v.indices, values=v.values)
                points.append(
                    models.PointStruct(id=r.id, vector={DENSE: vectors[DENSE], SPARSE: sparse}, payload=r.payload)
                )
            if points:
                client.upsert(target, points=points, wait=True)
                n += len(points)
            if offset is None:
                return n
