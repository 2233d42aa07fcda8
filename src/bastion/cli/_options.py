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
    bool,
    typer.Option("--locked", help="Use exactly the lock file; fail if it does not satisfy the definition."),
]
FormatOpt = Annotated[ListFormat, typer.Option("--format", help="Output format.")]

# Commands that read an image: one spelling of the image argument and its options everywhere.
IMAGE_HELP = (
    "A local store name (bastion/python:3.11), oci-dir://PATH[:TAG], docker-archive://FILE.tar, "
    "a registry reference (registry://HOST/REPO:TAG, or HOST/REPO:TAG) or fs://DIR."
)
ImageArg = Annotated[str, typer.Argument(help=IMAGE_HELP, show_default=False)]
ImagePlatformOpt = Annotated[
    str | None,
    typer.Option("--platform", help="Platform of a multi-platform image (default: the host's)."),
]
OutputOpt = Annotated[
    Path | None,
    typer.Option("--output", "-o", help="Write to this file instead of stdout.", show_default=False),
]


def split_platforms(value: str | None) -> list[str] | None:
    return [p.strip() for p in value.split(",") if p.strip()] if value else None
