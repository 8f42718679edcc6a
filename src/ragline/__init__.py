"""ragline: documentation in, cited answers out.

The Python API (docs/python.md)::

    import ragline

    with ragline.open("./.ragline") as rag:
        rag.ingest("docs/")
        for hit in rag.search("How do I configure retries?", k=3):
            print(hit.score, hit.chunk.url)
        print(rag.ask("How do I configure retries?").answer)

Names are imported on first use, so ``import ragline`` loads neither the models nor the index engine.
"""

from __future__ import annotations

from importlib import import_module

# Not typing.TYPE_CHECKING: importing typing would triple the cost of `import ragline` (mypy reads the name).
TYPE_CHECKING = False

__version__ = "0.1.0"

if TYPE_CHECKING:
    from typing import Any

    from ragline.config import Settings, load_settings
    from ragline.errors import RaglineError
    from ragline.ingest.report import IndexReport
    from ragline.library import Ragline, open
    from ragline.ops.delete import DeleteReport
    from ragline.records import Answer, Chunk, Citation, Done, Draft, Hit, Query, Retrieved, Token

# name -> the module that defines it
_LAZY = {
    "Ragline": "ragline.library",
    "open": "ragline.library",
    "Settings": "ragline.config",
    "load_settings": "ragline.config",
    "RaglineError": "ragline.errors",
    "Answer": "ragline.records",
    "Chunk": "ragline.records",
    "Citation": "ragline.records",
    "Hit": "ragline.records",
    "IndexReport": "ragline.ingest.report",
    "DeleteReport": "ragline.ops.delete",
    "Query": "ragline.records",
    "Token": "ragline.records",
    "Retrieved": "ragline.records",
    "Draft": "ragline.records",
    "Done": "ragline.records",
}

__all__ = [  # noqa: RUF022  # grouped: the facade, settings, records, events
    "Ragline",
    "open",
    "Settings",
    "load_settings",
    "RaglineError",
    "Answer",
    "Chunk",
    "Citation",
    "Hit",
    "IndexReport",
    "DeleteReport",
    "Query",
    "Token",
    "Retrieved",
    "Draft",
    "Done",
    "__version__",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ragline' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
