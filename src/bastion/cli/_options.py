"""Arguments and options shared by several commands."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer


class ListFormat(StrEnum):
    table = "table"
    json = "json"


DefinitionArg = Annotated[Path, typer.Argument(help="Image definition (YAML).", show_default=False)]
VariantOpt = Annotated[
    list[str] | None,
    typer.Option("--variant", help="Variant(s) to consider (default: all).", show_default=False),
]
PlatformOpt = Annotated[
    str | None, typer.Option("--platform", help="Comma-separated platforms (default: the definition's).")
]
LockedOpt = Annotated[
    bool, typer.Option("--locked", help="Use exactly the lock file; fail if the definition changed since.")
]
FormatOpt = Annotated[ListFormat, typer.Option("--format", help="Output format.")]


def split_platforms(value: str | None) -> list[str] | None:
    return [p.strip() for p in value.split(",") if p.strip()] if value else None
