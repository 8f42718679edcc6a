"""The command line: the one place that turns settings, logging and errors into a user's terminal.

Each command group lives in its own module and registers itself on the shared Typer ``app``.
"""

from __future__ import annotations

import sys
from typing import NoReturn

import typer
from rich.markup import escape

from ragline.cli import (
    adapt,  # noqa: F401
    crawl,  # noqa: F401
    generations,  # noqa: F401  (registers generations)
    mcp,  # noqa: F401
    models,  # noqa: F401
    ops,  # noqa: F401  (registers delete, snapshot)
    query,  # noqa: F401  (registers ingest, search, ask)
    serve,  # noqa: F401
    status,  # noqa: F401
)
from ragline.cli import eval as _eval  # noqa: F401
from ragline.cli.app import app, emit_json, err, state
from ragline.errors import RaglineError

__all__ = ["app", "main"]


def main() -> None:
    """Console entry point: user errors become one line on stderr and an exit code, never a traceback.

    With ``--json`` anywhere on the line, errors (usage errors too) come out as one JSON object on stdout,
    ``{"error": {"type", "message", "exit_code"}}``, where the command's JSON would have been.
    """
    as_json = "--json" in sys.argv[1:]
    try:
        code = app(standalone_mode=False)
    except typer.TyperException as e:  # a bad option or argument (Typer's usage errors)
        show = getattr(e, "show", None)
        if not as_json and show is not None:
            show()
        message = e.format_message() if hasattr(e, "format_message") else str(e)
        _fail("UsageError", message, getattr(e, "exit_code", 2), as_json)
    except RaglineError as e:
        if state.get("verbose") and not as_json:
            err.print_exception()
        _fail(type(e).__name__, str(e), e.exit_code, as_json, shown=False)
    except (KeyboardInterrupt, typer.Abort):
        _fail("Interrupted", "interrupted", 130, as_json, shown=False)
    sys.exit(code if type(code) is int else 0)


def _fail(kind: str, message: str, code: int, as_json: bool, *, shown: bool = True) -> NoReturn:
    if as_json:
        emit_json({"error": {"type": kind, "message": message, "exit_code": code}})
    elif not shown:
        # Escaped: "pip install 'ragline[llm]'" is no markup tag; soft-wrapped: one line, however narrow.
        text = f"[red]error:[/red] {escape(message)}" if code != 130 else message
        err.print(text, markup=code != 130, soft_wrap=True)
    sys.exit(code)
