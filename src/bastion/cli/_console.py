"""Output: data to stdout, progress and messages to stderr (so pipes and CI logs stay clean)."""

from __future__ import annotations

import sys
import threading

from rich.console import Console
from rich.markup import escape
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
# Markup is off: what is printed (and what tables hold) comes from definitions, packages, paths and
# servers, and "[/etc/ssl/certs/ca.crt]" in it must be shown, not parsed as a closing tag. Styling is
# done with Text objects, or markup=True on a string whose outside parts went through escape().
stdout = Console(soft_wrap=True, highlight=False, markup=False, width=None if sys.stdout.isatty() else 1000)
stderr = Console(stderr=True, highlight=False, markup=False, width=None if sys.stderr.isatty() else 1000)


class RichProgress:
    """The library's :class:`bastion._progress.Progress`, drawn on stderr when it is a terminal."""

    def __init__(self, *, quiet: bool = False) -> None:
        self._quiet = quiet
        self._lock = threading.Lock()
        self._bars = Progress(
            TextColumn("{task.description}", markup=False),
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
        warning(message)


def warning(message: str) -> None:
    """``warning: MESSAGE`` on stderr, the word in bold yellow; the message is shown as it is."""
    stderr.print(f"[bold yellow]warning:[/] {escape(message)}", markup=True, highlight=False)


def info(message: str) -> None:
    stderr.print(message, highlight=False, markup=False)


def is_interactive() -> bool:
    return sys.stdin.isatty()
