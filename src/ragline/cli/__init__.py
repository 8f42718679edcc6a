"""The command line: the one place that turns settings, logging and errors into a user's terminal.

Each command group lives in its own module and registers itself on the shared Typer ``app``.
"""

from __future__ import annotations

import sys

from ragline.cli import (
    adapt,  # noqa: F401
    crawl,  # noqa: F401
    ops,  # noqa: F401  (registers delete, snapshot)
    query,  # noqa: F401  (registers ingest, search, ask)
    serve,  # noqa: F401
    status,  # noqa: F401
)
from ragline.cli import eval as _eval  # noqa: F401
from ragline.cli.app import app, err, state
from ragline.errors import RaglineError

__all__ = ["app", "main"]


def main() -> None:
    """Console entry point: user errors become one line on stderr and an exit code, never a traceback."""
    try:
        app()
    except RaglineError as e:
        err.print(f"[red]error:[/red] {e}")
        if state.get("verbose"):
            err.print_exception()
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
