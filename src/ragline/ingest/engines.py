"""The ingest engines by name (``settings.ingest.engine``): both take the same arguments and give the same index."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Unpack

from ragline.components import Components
from ragline.errors import ConfigError
from ragline.ingest.gate import Gate
from ragline.ingest.report import IndexReport
from ragline.ingest.run import IngestOptions


def _local(paths: Sequence[str | Path], components: Components, **options: Unpack[IngestOptions]) -> IndexReport:
    from ragline.ingest.local import ingest

    return ingest(paths, components, **options)


def _ray(paths: Sequence[str | Path], components: Components, **options: Unpack[IngestOptions]) -> IndexReport:
    from ragline.ingest.ray_engine import ingest

    return ingest(paths, components, **options)


ENGINES: dict[str, Callable[..., IndexReport]] = {"local": _local, "ray": _ray}


def run_ingest(
    paths: Sequence[str | Path], components: Components, *, gate: Gate | None = None, **options: Unpack[IngestOptions]
) -> IndexReport:
    """Ingest with the engine the settings name, into a new index generation published once it passes ``gate``."""
    from ragline.ops.generations import ingest_generation

    name = components.settings.ingest.engine
    try:
        engine = ENGINES[name]
    except KeyError:
        raise ConfigError(f"unknown ingest engine {name!r}; one of {sorted(ENGINES)}") from None
    recreate = options.get("recreate", False)
    return ingest_generation(
        components, lambda: engine(paths, components, **options), recreate=recreate, gate=gate, sources=paths
    )
