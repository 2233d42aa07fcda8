"""The one error tree of Bastion.

Every error a user can cause or meet carries a one-line diagnosis. The command line turns errors into
exit codes in exactly one place (``bastion.cli._main``):

* 0 — success
* 1 — findings the user asked to fail on, or a failed verification (:class:`VerificationFailed`)
* 2 — a usage or input error, including anything refused by a trust check (:class:`InputError`),
  and an environment the user can fix: a missing tool, not root (:class:`EnvironmentProblem`)
* 3 — an internal error: a bug (:class:`InternalError` and any exception that is not a
  :class:`BastionError`)
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FINDINGS = 1
    USAGE = 2
    INTERNAL = 3


class BastionError(Exception):
    """Root of every error Bastion raises on purpose."""

    exit_code: ExitCode = ExitCode.USAGE

    def __init__(self, message: str, *, where: str | None = None, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.where = where
        self.hint = hint

    def diagnostic(self) -> str:
        """One line for the user: where, what, and (optionally) what to do."""
        text = f"{self.where}: {self.message}" if self.where else self.message
        if self.hint:
            text += f" ({self.hint})"
        return text


class InputError(BastionError):
    """Bad input from the user: a malformed definition, an unknown package, a bad argument."""


class DefinitionError(InputError):
    """A definition file is malformed; ``where`` is ``file:line``."""


class ResolutionError(InputError):
    """The requested package set cannot be resolved."""


class LockMismatchError(InputError):
    """``--locked`` was asked for but the lock file does not match the definition."""


class IntegrityError(InputError):
    """Something fetched or read failed a trust check: a signature, a hash, a size, a date.

    Refused input, so exit code 2 as the issue's contract says; nothing is written when it is raised.
    """


class UnsafeArchiveError(IntegrityError):
    """An archive entry would escape its root or create something we never create (a device node)."""


class NetworkError(BastionError):
    """A peer could not be reached or answered with an error."""


class VerificationFailed(BastionError):
    """A verification the user asked for did not pass."""

    exit_code = ExitCode.FINDINGS


class FindingsFound(BastionError):
    """Findings the user asked to fail on (``--exit-code``) remain."""

    exit_code = ExitCode.FINDINGS


class EnvironmentProblem(BastionError):
    """The machine lacks something the user can provide: a tool to install, root, a kernel feature.
    Not a bug (exit code 2); ``hint`` says what to do."""


class InternalError(BastionError):
    """Bastion cannot go on: a bug."""

    exit_code = ExitCode.INTERNAL
