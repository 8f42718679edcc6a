"""Changes to an index as new generations: ingest, delete and restore build one beside the published
generation, and publish it (after its gate) in one atomic step; the same flows for every backend that keeps
generations (the embedded engine's folders and pointer, a Qdrant collection alias: ``ragline.store.builds``).

The published generation is never written: a crash at any step leaves it whole and served, and the
generation left ``building`` is swept by the next change (the lock tells a crash from a live writer). Each
step is logged as it begins (``generation N: copy|baseline|write|gate|check|publish``, then ``generation K:
prune``; ``ragline -v`` shows them), so a log says where a process that died stopped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ragline.errors import GateFailedError
from ragline.ingest.gate import Gate, judge, measure
from ragline.store.base import VectorStore
from ragline.store.builds import Builds, builds_of
from ragline.store.generations import FAILED, KEPT, Generation

if TYPE_CHECKING:
    from ragline.components import Components
    from ragline.index import IndexReport

log = logging.getLogger(__name__)
T = TypeVar("T")


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
    builds = builds_of(components.store)
    gate = gate or Gate()
    if builds is None:  # a store written in place
        return run()
    gens = builds.generations
    chunking = components.settings.chunk.model_dump()
    with gens.locked():
        _tidy(builds)
        base = gens.published()
        base_gen = gens.read(base) if base is not None else None
        base_info = builds.stored_info(base) if base is not None else None
        same_model = base_info is not None and base_info.model == components.model_id
        fresh = recreate or not same_model or bool(base_gen and base_gen.chunking and base_gen.chunking != chunking)
        gen = gens.new(
            base=None if fresh else base,
            sources=[str(s) for s in sources],
            model=components.model_id,
            chunking=chunking,
            note="ingest",
        )
        builder: VectorStore | None = None
        try:
            if not fresh and base is not None:
                _step(gen.number, f"copy (from generation {base})")
            builder = builds.stage(gen.number, None if fresh else base, None if not fresh else components.index_info())
            if base is not None and gate.questions is not None:
                _step(gen.number, f"baseline (the gate's measures of generation {base})")
            before = _baseline(builds, base, base_gen, builder, components, gate, same_model and not fresh)
            _step(gen.number, "write (ingest)")
            with _store_swapped(components, builder):
                report = run()
            _step(gen.number, "gate")
            after = measure(builder, components, gate)
            builder.close()
        except BaseException:
            if builder is not None:
                builder.close()
            gens.remove(gen.number)
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
        _publish(builds, gen.number)
    log.info("published generation %d (%d documents, %d chunks)", gen.number, gen.documents, gen.chunks)
    return report


def _step(number: int, step: str) -> None:
    log.info("generation %d: %s", number, step)


def _tidy(builds: Builds) -> None:
    """Before a change (under the lock): sweep what a crash left, and adopt an index made before generations."""
    for n in builds.generations.sweep():
        log.warning("removed generation %d, left half-built by a process that did not finish", n)
    adopted = builds.generations.adopt()
    if adopted is not None:
        log.info("the index made before generations is now generation %d", adopted)


def _publish(builds: Builds, number: int) -> None:
    """Publish ``number``, move this process's readers to it, then prune (under the lock; both log their step)."""
    builds.generations.publish(number)
    builds.refresh()
    builds.generations.prune()


def _baseline(
    builds: Builds,
    base: int | None,
    base_gen: Generation | None,
    copy: VectorStore,
    components: Components,
    gate: Gate,
    is_copy: bool,
) -> dict[str, Any] | None:
    """The published generation's gate measures: on the fresh copy of it, from its record, or read from it
    directly; None when nothing is published or it cannot be measured."""
    if base is None or gate.questions is None:
        return None
    if is_copy:
        return measure(copy, components, gate)
    recorded = (base_gen.gate or {}).get("new") if base_gen else None
    if recorded and recorded.get("digest") == gate.digest():
        return dict(recorded)
    info = builds.stored_info(base)
    if info is None or info.model != components.model_id:
        log.warning("generation %d uses another embedding model: the gate cannot compare with it", base)
        return None
    with builds.peek(base) as other:
        return measure(other, components, gate)


def derive_generation(builds: Builds, change: Callable[[VectorStore], T], note: str, *, keep: Callable[[T], bool]) -> T:
    """Apply ``change`` to a copy of the published generation and publish the copy when ``keep(result)``."""
    gens = builds.generations
    with gens.locked():
        _tidy(builds)
        base = gens.published()
        if base is None:  # nothing indexed yet: nothing to copy
            return builds.unpublished(change)
        record = gens.read(base)
        gen = gens.new(base=base, note=note, sources=record.sources, model=record.model, chunking=record.chunking)
        target: VectorStore | None = None
        try:
            _step(gen.number, f"copy (from generation {base})")
            target = builds.stage(gen.number, base, None)
            _step(gen.number, f"write ({note})")
            result = change(target)
            gen.chunks = target.count()
            gen.documents = len({d.doc_id for d in target.documents()})
            target.close()
        except BaseException:
            if target is not None:
                target.close()
            gens.remove(gen.number)
            raise
        if not keep(result):
            gens.remove(gen.number)
            return result
        gens.write(gen)
        _publish(builds, gen.number)
    log.info("published generation %d: %s", gen.number, note)
    return result


def restore_generation(builds: Builds, source: Path, check: Callable[[Any], None] | None) -> None:
    """Publish a copy of the snapshot in ``source`` as a new generation kept on purpose (never pruned),
    once ``check`` passed on it; when it fails, nothing is published."""
    gens = builds.generations
    with gens.locked():
        _tidy(builds)
        gen = gens.new(note=f"restored from snapshot {source.parent.name}")
        staged: VectorStore | None = None
        try:
            _step(gen.number, f"copy (from snapshot {source.parent.name})")
            staged = builds.stage_snapshot(gen.number, source)
            _step(gen.number, "check")
            if check is not None:
                check(staged)
            info = staged.info()
            gen.model = info.model if info else None
            gen.chunks = staged.count()
            gen.documents = len({d.doc_id for d in staged.documents()})
            staged.close()
        except BaseException:
            if staged is not None:
                staged.close()
            gens.remove(gen.number)
            raise
        gen.state = KEPT
        gens.write(gen)
        _publish(builds, gen.number)
