"""Output: data to stdout, progress and messages to stderr (so pipes and CI logs stay clean)."""

from __future__ import annotations

import sys
import threading

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)

# A pipe or a CI log gets whole lines: tables are not wrapped to a guessed terminal width.
stdout = Console(soft_wrap=True, highlight=False, width=None if sys.stdout.isatty() else 1000)
stderr = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 1000)


class RichProgress:
    """The library's :class:`bastion._progress.Progress`, drawn on stderr when it is a terminal."""

    def __init__(self, *, quiet: bool = False) -> None:
        self._quiet = quiet
        self._lock = threading.Lock()
        self._bars = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeElapsedColumn(),
            console=stderr,
            transient=True,
            disable=quiet or not stderr.is_terminal,
        )
        self.warnings: list[str] = []

    def __enter__(self) -> RichProgress:
        self._bars.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._bars.stop()

    def task(self, description: str, total: int | None = None) -> int:
        if not stderr.is_terminal and not self._quiet:
            stderr.print(f"{description}…")
        return int(self._bars.add_task(description, total=total))

    def advance(self, task: int, amount: int = 1) -> None:
        with self._lock:
            self._bars.advance(TaskID(task), amount)

    def finish(self, task: int) -> None:
        self._bars.remove_task(TaskID(task))

    def warn(self, message: str) -> None:
        self.warnings.append(message)
        # Loud on purpose: a warning here is about trust (an expired index accepted, a key created).
        stderr.print(f"[bold yellow]warning:[/] {message}", markup=True, highlight=False)


def info(message: str) -> None:
    stderr.print(message, highlight=False, markup=False)


def is_interactive() -> bool:
    return sys.stdin.isatty()
