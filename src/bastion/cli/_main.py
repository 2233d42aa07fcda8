"""The one place where errors become exit codes (see :mod:`bastion.errors`)."""

from __future__ import annotations

import gc
import os
import signal
import sys
import threading
import traceback
from collections.abc import Sequence

import typer
import typer.main
from rich.markup import escape
from typer.exceptions import TyperException

from bastion.cli._app import app
from bastion.cli._console import stderr
from bastion.errors import BastionError, ExitCode

# 128 + SIGINT: what a shell reports for a command ended by Ctrl-C (README, exit codes).
INTERRUPTED = 130


class _Terminated(BaseException):
    """SIGTERM, raised in the main thread so that every ``with`` block and ``finally`` clause runs
    (temporary directories, spools, locks) before the process ends. Not an ``Exception``: no
    ``except Exception`` on the way may swallow it."""


def _on_sigterm(signum: int, frame: object) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second one must not cut the cleanups short
    raise _Terminated


def _skip_slow_iri_checks() -> None:
    """Keep jsonschema from loading ``rfc3987_syntax`` (process tuning belongs here, not in the library).

    jsonschema imports that package, when it is installed, to check the ``iri`` and
    ``iri-reference`` string formats; it compiles its grammars at import, a cost every command that
    validates anything (CycloneDX, OpenVEX) would pay (docs/benchmarks.md). It comes in only through
    jsonschema's optional ``format-nongpl`` extra, which cyclonedx-python-lib asks for. Without it
    jsonschema leaves those two formats unchecked; every structural rule of the schemas is still
    enforced. ``BASTION_STRICT_IRI=1`` keeps the checks (README, Environment).
    """
    if os.environ.get("BASTION_STRICT_IRI") != "1":
        sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]  # None: "not importable"


def main(argv: Sequence[str] | None = None) -> None:
    """Run the ``bastion`` command line and end the process (it always raises ``SystemExit``)."""
    _skip_slow_iri_checks()
    if threading.current_thread() is threading.main_thread():  # signal handlers live there only
        signal.signal(signal.SIGTERM, _on_sigterm)
    # A command is short-lived and makes almost no reference cycles, while the cycle collector's
    # passes over the growing heap (modules loading, a scan's short-lived objects) cost a build, an
    # import and a scan measurable time (docs/benchmarks.md). Reference counting frees the rest.
    gc.disable()
    try:
        _run(argv)
    finally:
        # The interpreter's last act is a cycle collection over every object left, all of them about
        # to go (its cost: docs/benchmarks.md). Frozen objects are skipped by it; everything is still
        # freed, and files and temporary directories are closed by their own context managers and
        # atexit hooks before this point.
        gc.freeze()


def _run(argv: Sequence[str] | None) -> None:
    command = typer.main.get_command(app)
    try:
        # With standalone_mode=False click returns (not raises) the code of a typer.Exit.
        returned = command.main(
            args=list(argv) if argv is not None else None, prog_name="bastion", standalone_mode=False
        )
        if returned == INTERRUPTED:  # typer turns a KeyboardInterrupt in a command into Exit(130)
            stderr.print("bastion: interrupted")
        if isinstance(returned, int) and returned != 0:
            sys.exit(returned)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        stderr.print("bastion: interrupted")
        sys.exit(INTERRUPTED)
    except _Terminated:
        stderr.print("bastion: terminated")
        sys.exit(128 + signal.SIGTERM)  # the shell's convention for a process ended by SIGTERM
    except TyperException as exc:  # usage errors: unknown option, missing argument
        show = getattr(exc, "show", None)
        if callable(show):
            show(file=sys.stderr)
        else:
            stderr.print(f"usage error: {exc}", highlight=False)
        sys.exit(ExitCode.USAGE)
    except BastionError as exc:
        # The diagnostic names files, fields, servers and values from outside: escaped, never markup.
        stderr.print(
            f"[bold red]error:[/] {escape(exc.diagnostic())}", highlight=False, markup=True, soft_wrap=True
        )
        sys.exit(exc.exit_code)
    except Exception as exc:
        # Not a BastionError: a bug. Say so, keep the type, and show the traceback on request.
        stderr.print(
            f"[bold red]internal error:[/] {type(exc).__name__}: {escape(str(exc))}",
            markup=True,
            highlight=False,
        )
        if os.environ.get("BASTION_DEBUG"):
            traceback.print_exc()
        else:
            stderr.print("set BASTION_DEBUG=1 for a traceback, and please report it", highlight=False)
        sys.exit(ExitCode.INTERNAL)
    sys.exit(ExitCode.OK)
