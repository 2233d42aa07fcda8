"""``bastion keygen``: a cosign-compatible key pair; and the password source shared by key commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bastion.attest import KeyKind
from bastion.cli._console import info, is_interactive, stdout
from bastion.errors import InputError


def read_password(*, confirm: bool) -> bytes:
    """BASTION_PASSWORD, else COSIGN_PASSWORD, else a hidden prompt on a terminal (typed twice when
    ``confirm``); without a terminal and without either variable, a clear error instead of a hang."""
    from bastion.attest import password_from_env

    from_env = password_from_env()
    if from_env is not None:
        return from_env
    if not is_interactive():
        raise InputError(
            "no password for the private key: stdin is not a terminal",
            hint="set BASTION_PASSWORD or COSIGN_PASSWORD",
        )
    text: str = typer.prompt(
        "Password for the private key",
        hide_input=True,
        confirmation_prompt=confirm,
        default="",
        show_default=False,
    )
    return text.encode("utf-8")


def keygen_command(
    output_key_prefix: Annotated[
        Path,
        typer.Option("--output-key-prefix", help="Write PREFIX.key and PREFIX.pub.", metavar="PREFIX"),
    ] = Path("bastion"),
    kind: Annotated[KeyKind, typer.Option("--kind", help="Key algorithm.")] = KeyKind.ecdsa_p256,
    force: Annotated[bool, typer.Option("--force", help="Replace existing key files.")] = False,
) -> None:
    """Generate a key pair in cosign's format: PREFIX.key (encrypted with a password) and PREFIX.pub.

    The password is read from BASTION_PASSWORD, else COSIGN_PASSWORD, else asked for twice.
    Prints the public key's path.
    """
    from bastion.attest import generate_key_pair, write_key_pair

    files = write_key_pair(
        generate_key_pair(kind), output_key_prefix, lambda: read_password(confirm=True), overwrite=force
    )
    info(f"private key written to {files.private} (encrypted; keep it and its password secret)")
    info(f"public key written to {files.public}")
    stdout.print(str(files.public), markup=False)


def register(app: typer.Typer) -> None:
    app.command("keygen")(keygen_command)
