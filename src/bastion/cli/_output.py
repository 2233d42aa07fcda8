"""``-o/--output``: the one way a command writes its data, to stdout or to the file the user named."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

OUTPUT_HELP = (
    "Write to FILE instead of stdout ('-': stdout). A regular file is replaced whole once complete; "
    "a device, FIFO or /dev/stdout is written straight through."
)
OutputOpt = Annotated[
    Path | None,
    typer.Option("--output", "-o", help=OUTPUT_HELP, metavar="FILE", show_default=False),
]


def to_stdout(output: Path | None) -> bool:
    """Whether ``-o`` asks for stdout: not given, or ``-``."""
    return output is None or str(output) == "-"


def emit(data: bytes, output: Path | None, *, line_on_stdout: bool = False) -> None:
    """Write a command's data to stdout (ended by a newline with ``line_on_stdout``) or, unchanged, to
    ``output`` (see :class:`bastion.oci.OutputFile`)."""
    if to_stdout(output):
        out = typer.get_binary_stream("stdout")
        out.write(data + b"\n" if line_on_stdout and not data.endswith(b"\n") else data)
        out.flush()
        return
    assert output is not None  # to_stdout
    from bastion.oci import write_output

    write_output(output, data)
