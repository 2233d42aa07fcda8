"""Progress reporting: the library reports, the command line decides how (or whether) to show it."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def task(self, description: str, total: int | None = None) -> int: ...
    def advance(self, task: int, amount: int = 1) -> None: ...
    def finish(self, task: int) -> None: ...
    def warn(self, message: str) -> None: ...


class Silent:
    """The default: report nothing, except that warnings are never silently lost."""

    def __init__(self) -> None:
        self.warnings: list[str] = []

    def task(self, description: str, total: int | None = None) -> int:
        return 0

    def advance(self, task: int, amount: int = 1) -> None:
        return None

    def finish(self, task: int) -> None:
        return None

    def warn(self, message: str) -> None:
        self.warnings.append(message)
