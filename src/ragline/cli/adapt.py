"""``ragline adapt``: fine-tune the index's embedding model on the index's own chunks."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ragline.cli.app import DataDir, JsonOut, app, components, emit_json, out
from ragline.cli.progress import Bars, bars_enabled


@app.command()
def adapt(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the adapted model (sentence-transformers)")],
    epochs: Annotated[int, typer.Option("--epochs", help="Passes over the training pairs")] = 1,
    batch: Annotated[int, typer.Option("--batch", help="Pairs per step (each pair's negatives are the batch)")] = 32,
    lr: Annotated[float, typer.Option("--lr", help="Peak learning rate")] = 2e-5,
    max_pairs: Annotated[int | None, typer.Option("--max-pairs", help="Train on this many pairs only")] = None,
    data_dir: DataDir = None,
    as_json: JsonOut = False,
) -> None:
    """Adapt the embedding model to this corpus, from its chunks alone (no questions needed).

    Then index again with it: RAGLINE_EMBEDDING__MODEL=OUT ragline ingest SOURCE... --recreate,
    and compare with `ragline eval retrieval`.
    """
    from ragline.embed.adapt import AdaptOptions, training_pairs
    from ragline.embed.adapt import adapt as run_adapt
    from ragline.embed.models import resolve_model
    from ragline.errors import EmptyIndexError

    comp = components(data_dir)
    try:
        info = comp.store.info()
        if info is None or comp.store.count() == 0:
            raise EmptyIndexError(f"no chunks to learn from in {comp.settings.data_dir}: run `ragline ingest` first")
        pairs = training_pairs((payload for _, payload in comp.store.points()), seed=0)
        embedding = comp.settings.embedding
    finally:
        comp.close()
    options = AdaptOptions(epochs=epochs, batch_size=batch, learning_rate=lr, max_pairs=max_pairs)
    with Bars(bars_enabled(as_json)) as bars:
        bars.add("train", "adapting", total=None, unit="steps")

        def tick(step: int, steps: int, loss: float) -> None:
            bars.update("train", completed=step, total=steps, note=f"loss {loss:.3f}")

        report = run_adapt(
            resolve_model(info.model),
            pairs,
            out_dir,
            options,
            query_prefix=embedding.query_prefix,
            doc_prefix=embedding.document_prefix,
            progress=tick,
        )
    if as_json:
        emit_json(report.to_json())
        return
    out.print(f"adapted {info.model} on {report.pairs} pairs in {report.steps} steps ({report.seconds:.0f} s)")
    before, after = report.held_out_before, report.held_out_after
    if before is not None and after is not None:
        out.print(
            f"held-out pairs whose partner ranks first in the batch: {before.accuracy:.3f} before, "
            f"{after.accuracy:.3f} after ({report.held_out_pairs} pairs; loss {before.loss:.3f} -> {after.loss:.3f})"
        )
    out.print(f"wrote {out_dir}")
    out.print(f"index with it:  RAGLINE_EMBEDDING__MODEL={out_dir} ragline ingest SOURCE... --recreate")
