"""``bastion schema``: the JSON schema of image definitions (what ``docs/definition-schema.json`` holds)."""

from __future__ import annotations

import typer

from bastion.cli._output import OutputOpt, emit


def schema_command(output: OutputOpt = None) -> None:
    """Print the JSON schema of image definitions, for editors and validators.

    The checked-in docs/definition-schema.json is regenerated with `bastion schema -o docs/definition-schema.json`."""
    from bastion.catalog import render_schema

    emit(render_schema().encode("utf-8"), output)


def register(app: typer.Typer) -> None:
    app.command("schema")(schema_command)
