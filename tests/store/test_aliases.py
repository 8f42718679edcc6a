"""The alias store's own parts on qdrant-client's local mode: generations as collections, a reader that stays
on its embedding model's generation, what a publish changes for readers of the alias, and what a crash leaves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from qdrant_client import models

from ragline.errors import StoreError
from ragline.records import Chunk, Document
from ragline.store.aliased import AliasStore
from ragline.store.base import IndexInfo, VectorStore
from ragline.store.generations import Generation

DIM = 4


def chunk(source: str) -> Chunk:
    doc_id = Document.from_sections(source, "t", "text", []).doc_id
    return Chunk(
        doc_id=doc_id,
        source=source,
        title="t",
        section="s",
        anchor=None,
        text=f"text of {source}",
        start=0,
        end=10,
        index=0,
        doc_hash="h",
    )


def build(store: AliasStore, model: str, source: str) -> int:
    """One generation holding one chunk, built with ``model`` and published, as the generation flows do."""
    gens = store.generations
    with gens.locked():
        gen = gens.new(model=model, note="test")
        staged: VectorStore = store.builds.stage(gen.number, None, IndexInfo(model, DIM))
        staged.upsert([chunk(source)], np.eye(1, DIM, dtype=np.float32))
        staged.close()
        gens.write(gen)
        gens.publish(gen.number)
    store.refresh()
    return gen.number


def found(store: AliasStore) -> list[str]:
    return [h.chunk.source for h in store.search(np.eye(1, DIM, dtype=np.float32)[0], 3)]


@pytest.fixture
def store(tmp_path: Path) -> AliasStore:
    s = AliasStore(path=str(tmp_path / "qdrant"), collection="docs", lock_dir=tmp_path)
    yield s  # type: ignore[misc]
    s.close()


def test_a_reader_stays_on_its_model_and_comes_back_to_the_alias(store: AliasStore) -> None:
    assert build(store, "model-a", "one.md") == 1
    store.open(IndexInfo("model-a", DIM))
    assert found(store) == ["one.md"]
    build(store, "model-b", "two.md")  # another model: meaningless to this reader's query vectors
    assert found(store) == ["one.md"]
    served = store.served()
    assert (served["served"], served["published"], served["refused"]["generation"]) == (1, 2, 2)
    assert "model-b" in served["refused"]["error"]
    build(store, "model-a", "three.md")
    assert found(store) == ["three.md"]
    assert store.served() == {"served": 3, "published": 3}


def test_the_record_lives_in_the_collection_metadata_and_a_foreign_collection_is_not_adopted(
    store: AliasStore, tmp_path: Path
) -> None:
    build(store, "model-a", "one.md")
    gen = store.generations.read(1)
    assert (gen.state, gen.model, gen.note) == ("published", "model-a", "test")
    other = AliasStore(path=str(tmp_path / "qdrant"), collection="plain", lock_dir=tmp_path)
    other.engine.conn().create_collection("plain", vectors_config={})  # made outside ragline
    with other.generations.locked(), pytest.raises(StoreError, match="not made by ragline"):
        other.generations.adopt()
    assert other.generations.plain()
    other.close()


def test_the_ray_writers_of_a_server_write_the_new_generation_not_the_alias(store: AliasStore, tmp_path: Path) -> None:
    from ragline.config import load_settings
    from ragline.ingest.ray_engine import _writing_to

    settings = load_settings(data_dir=tmp_path, qdrant={"url": "http://qdrant.invalid:6333", "collection": "docs"})
    builder = store.make(7)  # what the ingest writes through: generation 7's collection
    assert _writing_to(settings, builder).qdrant.collection == "docs__gen7"
    assert _writing_to(settings, store).qdrant.collection == "docs"  # a store written in place


def test_an_alias_lost_mid_migration_is_put_back_on_the_newest_published_generation(store: AliasStore) -> None:
    build(store, "model-a", "one.md")
    build(store, "model-a", "two.md")
    store.generations.point(1)
    # The plain collection deleted, the alias not yet created: the process died between the two requests.
    store.engine.conn().update_collection_aliases(
        change_aliases_operations=[models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name="docs"))]
    )
    assert store.generations.published() is None
    with store.generations.locked():
        assert store.generations.adopt() == 2
    assert store.generations.published() == 2


def test_a_crash_between_the_alias_move_and_the_record_and_a_collection_left_without_record_are_swept(
    store: AliasStore,
) -> None:
    build(store, "model-a", "one.md")
    gens = store.generations
    with gens.locked():
        # Killed after the alias moved, before the record said published: the record is corrected.
        gen = gens.new(model="model-a", note="test")
        store.builds.stage(gen.number, None, IndexInfo("model-a", DIM)).close()
        gens.point(gen.number)
        assert (gens.published(), gens.read(2).state) == (2, "building")
        # Killed after a collection was made, before its record was written: deleted, its number reused.
        store.make(3).open(IndexInfo("model-a", DIM))
        assert gens.read(3).state == "building"
        assert gens.sweep() == [3]
    assert gens.numbers() == [1, 2] and gens.read(2).state == "published" and gens.previous() == 1


def test_publish_moves_the_alias_before_the_record_and_logs_each_step(
    store: AliasStore, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    build(store, "model-a", "one.md")
    build(store, "model-a", "two.md")
    gens, order = store.generations, []
    point, write = gens.point, gens.write

    def pointing(number: int) -> None:
        order.append("alias")
        point(number)

    def writing(gen: Generation) -> None:
        order.append(f"record {gen.state}")
        write(gen)

    monkeypatch.setattr(gens, "point", pointing)
    monkeypatch.setattr(gens, "write", writing)
    with caplog.at_level("INFO", logger="ragline.store.generations"), gens.locked():
        gen = gens.new(model="model-a", note="test")
        store.builds.stage(gen.number, 2, None).close()
        gens.write(gen)
        order.clear()
        gens.publish(gen.number)
        gens.prune()
    assert order == ["alias", "record published"]
    assert gens.numbers() == [2, 3]
    assert "generation 3: publish" in caplog.text and "generation 1: prune" in caplog.text
