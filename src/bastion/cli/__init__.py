"""The ``bastion`` command line: thin commands over the library."""

from bastion.cli._main import main

__all__ = ["main"]
