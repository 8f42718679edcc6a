"""The ingest engines by name (``settings.ingest.engine``): both take the same arguments and give the same index."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ragline.components import Components
from ragline.errors import ConfigError
from ragline.index import IndexReport
from ragline.ingest.local import Progress


def _local(paths: Sequence[str | Path], components: Components, **kw: Any) -> IndexReport:
    from ragline.ingest.local import ingest

    return ingest(paths, components, **kw)


def _ray(paths: Sequence[str | Path], components: Components, **kw: Any) -> IndexReport:
    from ragline.ingest.ray_engine import ingest

    return ingest(paths, components, **kw)


ENGINES: dict[str, Callable[..., IndexReport]] = {"local": _local, "ray": _ray}


def run_ingest(
    paths: Sequence[str | Path],
    components: Components,
    *,
    recreate: bool = False,
    progress: Progress | None = None,
    metadata: dict[str, Any] | None = None,
) -> IndexReport:
    """Ingest with the engine the settings name."""
    name = components.settings.ingest.engine
    try:
        engine = ENGINES[name]
    except KeyError:
        raise ConfigError(f"unknown ingest engine {name!r}; one of {sorted(ENGINES)}") from None
    return engine(paths, components, recreate=recreate, progress=progress, metadata=metadata)
