"""The one place where errors become exit codes (see :mod:`bastion.errors`)."""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Sequence

import click
import typer.main

from bastion.cli._app import app
from bastion.cli._console import stderr
from bastion.errors import BastionError, ExitCode


def main(argv: Sequence[str] | None = None) -> None:
    command = typer.main.get_command(app)
    try:
        command.main(
            args=list(argv) if argv is not None else None, prog_name="bastion", standalone_mode=False
        )
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:  # usage errors: unknown option, missing argument
        exc.show(file=sys.stderr)
        sys.exit(ExitCode.USAGE)
    except (click.exceptions.Abort, KeyboardInterrupt):
        stderr.print("bastion: interrupted")
        sys.exit(130)
    except BastionError as exc:
        stderr.print(f"[bold red]error:[/] {exc.diagnostic()}", highlight=False, markup=True, soft_wrap=True)
        sys.exit(exc.exit_code)
    except Exception as exc:
        # Not a BastionError: a bug. Say so, keep the type, and show the traceback on request.
        stderr.print(
            f"[bold red]internal error:[/] {type(exc).__name__}: {exc}", markup=True, highlight=False
        )
        if os.environ.get("BASTION_DEBUG"):
            traceback.print_exc()
        else:
            stderr.print("set BASTION_DEBUG=1 for a traceback, and please report it", highlight=False)
        sys.exit(ExitCode.INTERNAL)
    sys.exit(ExitCode.OK)
