"""The command tree. Each command group lives in its own module and is registered here."""

from __future__ import annotations

import typer

from bastion import __version__
from bastion.cli import (
    _attest,
    _compliance,
    _factory,
    _images,
    _keys,
    _publish,
    _review,
    _sbom,
    _schema,
    _sla,
    _source,
    _supply,
    _vuln,
)

app = typer.Typer(
    rich_markup_mode=None,
    name="bastion",
    help="Build minimal, hardened, reproducible container images from Debian packages, and prove what is in them.\n\n"
    "Exit codes: 0 ok, 1 findings or failed verification, 2 usage or input error, 3 internal error, "
    "130 interrupted.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"bastion {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version."
    ),
) -> None:
    """Bastion."""


_supply.register(app)
_schema.register(app)
_images.register(app)
_sbom.register(app)
_compliance.register(app)
_keys.register(app)
_vuln.register(app)
_attest.register(app)
_publish.register(app)
_source.register(app)
_factory.register(app)
_sla.register(app)
_review.register(app)
