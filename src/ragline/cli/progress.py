"""Progress bars on stderr: done / total, rate, elapsed time and time left.

Shown only on an interactive stderr, never with ``--quiet`` or ``--json``, so piped output and logs stay clean.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from ragline.cli.app import err, state


class RateColumn(ProgressColumn):
    """Items per second over the last samples, in the task's ``unit``."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        unit = task.fields.get("unit", "items")
        return Text(f"{speed:.1f} {unit}/s" if speed else f"- {unit}/s", style="progress.data.speed")


def bars_enabled(as_json: bool = False, console: Console | None = None) -> bool:
    """Whether a command should draw progress: a terminal on stderr, neither --quiet nor --json."""
    return (console or err).is_terminal and not state.get("quiet") and not as_json


class Bars:
    """One or more progress rows; every method is a no-op when disabled."""

    def __init__(self, enabled: bool, console: Console | None = None, transient: bool = True) -> None:
        self.enabled = enabled
        self.progress: Progress | None = None
        self.console = console or err
        self.transient = transient
        self._tasks: dict[str, Any] = {}
        self._pending: list[tuple[str, str, int | None, str]] = []

    def __enter__(self) -> Bars:
        if self.enabled:
            self.progress = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(bar_width=30),
                MofNCompleteColumn(),
                RateColumn(),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                TextColumn("{task.fields[note]}", style="dim"),
                console=self.console,
                transient=self.transient,
            )
            self.progress.start()
            for row in self._pending:
                self.add(*row)
        return self

    def add(self, key: str, description: str, total: int | None = None, unit: str = "items") -> None:
        """A row; rows added before the bars start appear when they do."""
        if not self.enabled:
            return
        if self.progress is None:
            self._pending.append((key, description, total, unit))
            return
        self._tasks[key] = self.progress.add_task(description, total=total, unit=unit, note="")

    def advance(self, key: str, n: float = 1) -> None:
        if self.progress is not None and key in self._tasks:
            self.progress.advance(self._tasks[key], n)

    def update(self, key: str, **fields: Any) -> None:
        """``completed``, ``total``, ``description`` or ``note`` of a row."""
        if self.progress is not None and key in self._tasks:
            self.progress.update(self._tasks[key], **fields)

    def print(self, *args: Any, **kw: Any) -> None:
        """A line above the bars (or plainly on stderr when there are none); nothing with --quiet."""
        if state.get("quiet"):
            return
        (self.progress.console if self.progress is not None else err).print(*args, **kw)

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()
