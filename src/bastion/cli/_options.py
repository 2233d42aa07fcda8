"""Arguments and options shared by several commands."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from bastion.catalog import Definition
    from bastion.oci import ImageRef


class ListFormat(StrEnum):
    table = "table"
    json = "json"


DefinitionArg = Annotated[Path, typer.Argument(help="Image definition (YAML).", show_default=False)]
VariantOpt = Annotated[
    list[str] | None,
    typer.Option("--variant", help="Variant(s) to consider (default: all).", show_default=False),
]
PlatformOpt = Annotated[
    str | None,
    typer.Option(
        "--platform", help="Comma-separated platforms, of those the definition lists (default: all)."
    ),
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

# Which references each command takes (bastion.oci.Scheme values; README "Naming an image"). Kept as
# strings so that a command's start-up does not import bastion.oci before it needs it.
_IMAGES = ("store", "oci-dir", "docker-archive", "fs", "registry")
_ATTESTED = ("store", "oci-dir", "registry")
_REGISTRY = ("registry",)
COMMAND_SCHEMES: dict[str, tuple[str, ...]] = {
    "cves": (*_IMAGES, "sbom"),
    "vex": (*_IMAGES, "sbom"),
    "sbom": _IMAGES,
    "compare": _IMAGES,
    "compliance": _IMAGES,
    "inspect": ("store", "oci-dir"),
    "export": ("store",),
    "export destination": ("oci-dir", "docker-archive"),
    "attest list": _ATTESTED,
    "attest get": _ATTESTED,
    "verify": _ATTESTED,
    "push": ("store",),
    "push destination": _REGISTRY,
    "pull": _REGISTRY,
    "mirror": _REGISTRY,
}


def image_ref(command: str, text: str) -> ImageRef:
    """``text`` parsed (:func:`bastion.oci.parse_image_ref`) and checked against what ``command``
    takes (:data:`COMMAND_SCHEMES`): the one place a command refuses a kind of reference."""
    from bastion.oci import Scheme, parse_image_ref

    accepted = {Scheme(name) for name in COMMAND_SCHEMES[command]}
    name, destination, _ = command.partition(" destination")
    by = f"the destination of `bastion {name}`" if destination else f"`bastion {name}`"
    return parse_image_ref(text).require(accepted, by)


ImageArg = Annotated[str, typer.Argument(help=IMAGE_HELP, show_default=False)]
ImagePlatformOpt = Annotated[
    str | None,
    typer.Option("--platform", help="Platform of a multi-platform image (default: the host's)."),
]


def split_platforms(value: str | None) -> list[str] | None:
    return [p.strip() for p in value.split(",") if p.strip()] if value else None


def definition_platforms(
    spec: Definition, variants: list[str] | None, platform: str | None
) -> list[str] | None:
    """The ``--platform`` values, checked against the definition (:func:`bastion.pipeline.chosen_platforms`,
    which every caller of the pipeline goes through); None when no platform was given."""
    from bastion.pipeline import chosen_platforms

    return chosen_platforms(spec, variants, split_platforms(platform))
