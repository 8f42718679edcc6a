"""Changes to an embedded index as new generations: ingest, delete and restore build one beside the
published generation, and publish it (after its gate) with one atomic pointer swap.

The published generation is never written: a crash at any step leaves it whole and served, and the
generation left ``building`` is swept by the next change (the lock tells a crash from a live writer). Each
step is logged as it begins (``generation N: copy|baseline|write|gate|check|publish``, then ``generation K:
prune``; ``ragline -v`` shows them), so a log says where a process that died stopped.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ragline.errors import GateFailedError
from ragline.ingest.gate import Gate, judge, measure
from ragline.store.base import IndexInfo, VectorStore
from ragline.store.filters import info_from_json
from ragline.store.following import FollowingStore
from ragline.store.generations import BASELINE, FAILED, KEPT, Generation, Generations

if TYPE_CHECKING:
    from ragline.components import Components
    from ragline.index import IndexReport
    from ragline.store.edge import EdgeStore

log = logging.getLogger(__name__)
T = TypeVar("T")


def stored_info(gens: Generations, number: int) -> IndexInfo | None:
    try:
        return info_from_json(json.loads((gens.path(number) / "index.json").read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return None


@contextmanager
def _store_swapped(components: Components, store: VectorStore) -> Iterator[None]:
    """``components.store`` is ``store`` while the block runs (the engines write through it)."""
    before = components.__dict__.get("store")
    components.__dict__["store"] = store
    try:
        yield
    finally:
        components.__dict__["store"] = before


def ingest_generation(
    components: Components,
    run: Callable[[], IndexReport],
    *,
    recreate: bool = False,
    gate: Gate | None = None,
    sources: Sequence[str | Path] = (),
) -> IndexReport:
    """Run an ingest (``run``) into a new generation, gate it, and publish it.

    The new generation starts as a copy of the published one (the ingest then writes only what changed),
    or empty with ``recreate`` or when the embedding model or chunk settings differ from the published one's.
    A gate that fails keeps it unpublished (state ``failed``) and raises GateFailedError.
    """
    store = components.store
    gate = gate or Gate()
    if not isinstance(store, FollowingStore):  # a Qdrant server or local-mode path: written in place
        return run()
    gens = store.generations
    chunking = components.settings.chunk.model_dump()
    with gens.locked():
        _sweep(gens)
        base = gens.published()
        base_gen = gens.read(base) if base is not None else None
        base_info = stored_info(gens, base) if base is not None else None
        same_model = base_info is not None and base_info.model == components.model_id
        fresh = recreate or not same_model or bool(base_gen and base_gen.chunking and base_gen.chunking != chunking)
        gen = gens.new(
            base=None if fresh else base,
            sources=[str(s) for s in sources],
            model=components.model_id,
            chunking=chunking,
            note="ingest",
        )
        path = gens.path(gen.number)
        builder: EdgeStore | None = None
        try:
            if not fresh and base is not None:
                _step(gen.number, f"copy (from generation {base})")
                started = time.perf_counter()
                gens.copy_index(base, path)
                log.info("copied generation %d into %d in %.2f s", base, gen.number, time.perf_counter() - started)
            builder = store.make(path)
            if base is not None and gate.questions is not None:
                _step(gen.number, f"baseline (the gate's measures of generation {base})")
            before = _baseline(gens, base, base_gen, builder, components, gate, same_model and not fresh)
            _step(gen.number, "write (ingest)")
            with _store_swapped(components, builder):
                report = run()
            _step(gen.number, "gate")
            after = measure(builder, components, gate)
            builder.close()
        except BaseException:
            if builder is not None:
                builder.close()
            gens.discard(gen.number)
            raise
        verdict = judge(gate, after, before)
        gen.documents, gen.chunks = after["documents"], report.index_chunks
        gen.gate = verdict.to_json() if gate.active else None
        if not verdict.passed:
            gen.state = FAILED
            gens.write(gen)
            raise GateFailedError(
                f"generation {gen.number} did not pass its gate and was not published "
                f"(generation {base} still serves): " + "; ".join(verdict.failures) + "\n" + verdict.table()
            )
        gens.write(gen)
        _publish(store, gen.number)
    log.info("published generation %d (%d documents, %d chunks)", gen.number, gen.documents, gen.chunks)
    return report


def _step(number: int, step: str) -> None:
    log.info("generation %d: %s", number, step)


def _sweep(gens: Generations) -> None:
    for n in gens.sweep():
        log.warning("removed generation %d, left half-built by a process that did not finish", n)


def _publish(store: FollowingStore, number: int) -> None:
    """Publish ``number``, move this process's readers to it, then prune (under the lock)."""
    store.generations.publish(number)
    store.refresh()
    store.generations.prune()


def _baseline(
    gens: Generations,
    base: int | None,
    base_gen: Generation | None,
    copy: VectorStore,
    components: Components,
    gate: Gate,
    is_copy: bool,
) -> dict[str, Any] | None:
    """The published generation's gate measures: on the fresh copy of it, from its record, or on a
    temporary copy (built from empty beside it); None when nothing is published or it cannot be measured."""
    if base is None or gate.questions is None:
        return None
    if is_copy:
        return measure(copy, components, gate)
    recorded = (base_gen.gate or {}).get("new") if base_gen else None
    if recorded and recorded.get("digest") == gate.digest():
        return dict(recorded)
    info = stored_info(gens, base)
    if info is None or info.model != components.model_id:
        log.warning("generation %d uses another embedding model: the gate cannot compare with it", base)
        return None
    scratch = gens.root / f"{BASELINE}{base}"
    shutil.rmtree(scratch, ignore_errors=True)
    gens.copy_index(base, scratch)
    assert isinstance(components.store, FollowingStore)
    other = components.store.make(scratch)
    try:
        return measure(other, components, gate)
    finally:
        other.close()
        shutil.rmtree(scratch, ignore_errors=True)


def derive_generation(
    store: FollowingStore, change: Callable[[EdgeStore], T], note: str, *, keep: Callable[[T], bool]
) -> T:
    """Apply ``change`` to a copy of the published generation and publish the copy when ``keep(result)``."""
    gens = store.generations
    with gens.locked():
        _sweep(gens)
        base = gens.published()
        if base is None:  # nothing indexed yet: nothing to copy
            return store._run(change)
        record = gens.read(base)
        gen = gens.new(base=base, note=note, sources=record.sources, model=record.model, chunking=record.chunking)
        path = gens.path(gen.number)
        target = store.make(path)
        try:
            _step(gen.number, f"copy (from generation {base})")
            gens.copy_index(base, path)
            _step(gen.number, f"write ({note})")
            result = change(target)
            gen.chunks = target.count()
            gen.documents = len({d.doc_id for d in target.documents()})
            target.close()
        except BaseException:
            target.close()
            gens.discard(gen.number)
            raise
        if not keep(result):
            gens.discard(gen.number)
            return result
        gens.write(gen)
        _publish(store, gen.number)
    log.info("published generation %d: %s", gen.number, note)
    return result


def restore_generation(store: FollowingStore, source: Path, check: Callable[[Any], None] | None) -> None:
    """Publish a copy of the snapshot in ``source`` as a new generation kept on purpose (never pruned),
    once ``check`` passed on it; when it fails, nothing is published."""
    gens = store.generations
    with gens.locked():
        _sweep(gens)
        gen = gens.new(note=f"restored from snapshot {source.parent.name}")
        path = gens.path(gen.number)
        staged = store.make(path)
        try:
            _step(gen.number, f"copy (from snapshot {source.parent.name})")
            shutil.copytree(source, path, dirs_exist_ok=True)
            _step(gen.number, "check")
            if check is not None:
                check(staged)
            info = staged.info()
            gen.model = info.model if info else None
            gen.chunks = staged.count()
            gen.documents = len({d.doc_id for d in staged.documents()})
            staged.close()
        except BaseException:
            staged.close()
            gens.discard(gen.number)
            raise
        gen.state = KEPT
        gens.write(gen)
        _publish(store, gen.number)
