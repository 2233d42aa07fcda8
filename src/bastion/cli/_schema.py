"""``bastion schema``: the JSON schema of image definitions (what ``docs/definition-schema.json`` holds), or
with ``--package`` of package definitions (``docs/package-schema.json``)."""

from __future__ import annotations

from typing import Annotated

import typer

from bastion.cli._output import OutputOpt, emit


def schema_command(
    output: OutputOpt = None,
    package: Annotated[
        bool,
        typer.Option("--package", help="The schema of package definitions (source packages to rebuild)."),
    ] = False,
) -> None:
    """Print the JSON schema of image definitions, for editors and validators.

    The checked-in docs/definition-schema.json is regenerated with `bastion schema -o docs/definition-schema.json`,
    docs/package-schema.json with `bastion schema --package -o docs/package-schema.json`."""
    from bastion.catalog import render_package_schema, render_schema

    emit((render_package_schema() if package else render_schema()).encode("utf-8"), output)


def register(app: typer.Typer) -> None:
    app.command("schema")(schema_command)
