"""The Typer app, shared options and output helpers; commands live in sibling modules."""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from ragline.config import Settings, load_settings
from ragline.observability.logging import configure_logging

app = typer.Typer(
    name="ragline",
    help="Documentation in, cited answers out.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
# Control characters (ESC and the rest) in what is printed become visible escapes: titles, paths and texts come
# from documents, and a hostile file name must not drive the user's terminal.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def visible(text: str) -> str:
    """``text`` with every control character but tab and newline shown as ``\\xNN``."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


class _Console(Console):
    def print(self, *objects: Any, **options: Any) -> None:
        super().print(*(visible(o) if isinstance(o, str) else o for o in objects), **options)


out = _Console(highlight=False, soft_wrap=True)
err = _Console(stderr=True, highlight=False)

DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Where the index lives [env RAGLINE_DATA_DIR, default ./.ragline]"),
]
JsonOut = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of text")]
K = Annotated[int | None, typer.Option("--k", "-k", help="How many chunks to retrieve")]
Filter = Annotated[
    list[str] | None,
    typer.Option(
        "--filter", "-f", help="key=value; source=PREFIX, type=html|markdown|rst|notebook|pdf|docx, or metadata"
    ),
]

state: dict[str, Any] = {"verbose": 0}


def settings(data_dir: Path | None = None) -> Settings:
    """The settings tree; a mistake in it is a ``ConfigError`` naming the variable, file or option."""
    return load_settings(data_dir=data_dir)


def components(data_dir: Path | None):
    from ragline.components import Components

    return Components(settings(data_dir))


def emit_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, indent=2) + "\n")


def _version(value: bool) -> None:
    if value:
        from ragline import __version__

        out.print(f"ragline {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit")
    ] = False,
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True, help="More logging (-vv for debug)")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only errors on stderr")] = False,
) -> None:
    level = logging.ERROR if quiet else (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    configure_logging("text", level)  # `serve` switches to the server's format (JSON by default)
    # The OpenAI client's debug lines dump whole requests (the question and the retrieved text): never
    # at -vv; questions reach the logs only as ragline.privacy.query_ref shows them.
    logging.getLogger("openai").setLevel(max(level, logging.INFO))
    state["verbose"], state["quiet"] = verbose, quiet
    # Weights come from installed packages; never wait on an unreachable hub.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def snippet(text: str, n: int = 160) -> str:
    one = " ".join(text.split())
    return one if len(one) <= n else one[: n - 1] + "…"
