"""The links ``update-alternatives`` would make, from the packages' own declarations, without running them.

Bastion runs no maintainer script, so the commands Debian provides only through alternatives (``awk``
from mawk, ``which`` from debianutils, ``pager``, ``editor``, ``rmt``, ``cc`` ...) would be missing.
Each package's ``postinst`` (a control member, read only, never run) is searched for
``update-alternatives --install LINK NAME PATH PRIORITY [--slave LINK NAME PATH]...`` calls, as
update-alternatives(1) documents them, and what ``--auto`` mode would then set up is made:

* per NAME, among the declared choices whose PATH the tree holds, the one of highest priority wins
  (update-alternatives(1) "automatic mode"; on a tie, the first declared in installation order);
* ``LINK -> /etc/alternatives/NAME -> PATH``, and the same for each slave whose PATH the tree holds
  (a slave without one gets no link, as update-alternatives removes it);
* ``/var/lib/dpkg/alternatives/NAME``, the administrative file update-alternatives reads (dev
  variants, which have it), so that a later ``update-alternatives --install`` or ``--config`` sees
  every choice.

What a script would compute (an argument with ``$`` or a backquote) cannot be known without running
it and is left out, as is a LINK where the tree holds something other than a symlink (update-
alternatives does not replace a real file). A declaration that is not a plain absolute path, that
would put a link inside the dpkg database or ``/etc/alternatives``, or an alternative name with a
``/`` is an :class:`~bastion.errors.UnsafeArchiveError`: a package that asks for that is refused, not
half applied. At most :data:`MAX_DECLARED` declarations, with :data:`MAX_SLAVES` slaves each, are read
per package.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bastion.errors import UnsafeArchiveError

__all__ = ["ADMINDIR", "ALTDIR", "Choice", "Link", "Selection", "declared", "select"]

ALTDIR = "etc/alternatives"
ADMINDIR = "var/lib/dpkg/alternatives"
MAX_DECLARED = 256  # more than any Debian package declares (libopenblas declares 3)
MAX_SLAVES = 128  # debianutils declares 8, the most in bookworm's essential set
_NAME = re.compile(r"[A-Za-z0-9_.+@:-]{1,255}")
_FORBIDDEN = ("var/lib/dpkg", ALTDIR)


@dataclass(frozen=True)
class Link:
    """One link of an alternative: ``link -> /etc/alternatives/name -> path`` (absolute paths)."""

    link: str
    name: str
    path: str


@dataclass(frozen=True)
class Choice:
    """One ``--install`` call: the master link, its priority, slaves, and which package declared it."""

    master: Link
    priority: int
    slaves: tuple[Link, ...]
    package: str
    where: str  # the .deb, for messages and origins


@dataclass(frozen=True)
class Selection:
    """What ``--auto`` mode makes for one name: the winning choice and every choice the tree allows."""

    best: Choice
    choices: tuple[Choice, ...]

    def state(self) -> bytes:
        """``/var/lib/dpkg/alternatives/NAME`` as update-alternatives writes it (dpkg's
        ``utils/update-alternatives.c``, ``alternative_save``): mode, master link, slave name and link
        pairs, a blank line, then per choice its path, priority and each slave's path (blank when the
        choice has none), and a blank line at the end."""
        names = [slave.name for slave in self.best.slaves]
        links = {slave.name: slave.link for choice in self.choices for slave in choice.slaves}
        for choice in self.choices:
            names += [slave.name for slave in choice.slaves if slave.name not in names]
        lines = ["auto", self.best.master.link]
        for name in names:
            lines += [name, links[name]]
        lines.append("")
        for choice in self.choices:
            paths = {slave.name: slave.path for slave in choice.slaves}
            lines += [choice.master.path, str(choice.priority), *(paths.get(name, "") for name in names)]
        lines.append("")
        return "".join(f"{line}\n" for line in lines).encode()


def _logical_lines(script: str) -> list[str]:
    """The script's lines with backslash-newline continuations joined, as sh(1) reads them."""
    return script.replace("\\\n", " ").splitlines()


def _tokens(line: str) -> list[str]:
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        return list(lexer)
    except ValueError:  # an unbalanced quote: a string spanning lines, not a call we can read
        return []


def _plain(path: str, where: str) -> str:
    """An absolute, normalised path, or an :class:`UnsafeArchiveError`."""
    if (
        not path.startswith("/")
        or posixpath.normpath(path) != path
        or path.startswith("//")
        or len(path) > 4096
        or "\0" in path
        or path == "/"
    ):
        raise UnsafeArchiveError(
            f"postinst: update-alternatives path {path!r} is not a plain absolute path", where=where
        )
    return path


def _link(link: str, name: str, path: str, where: str) -> Link:
    if not _NAME.fullmatch(name) or name in (".", ".."):
        raise UnsafeArchiveError(
            f"postinst: update-alternatives name {name!r} is not a file name", where=where
        )
    link = _plain(link, where)
    inside = link.lstrip("/")
    if any(inside == top or inside.startswith(f"{top}/") for top in _FORBIDDEN):
        raise UnsafeArchiveError(
            f"postinst: update-alternatives link {link!r} is inside /{inside.split('/')[0]}/... Bastion writes",
            where=where,
        )
    return Link(link, name, _plain(path, where))


def _parse_call(words: list[str], package: str, where: str) -> Choice | None:
    """The ``--install`` of one update-alternatives call (the words after the command), or None."""
    rest = list(words)
    while rest and rest[0] != "--install":
        if rest[0] in ("--altdir", "--admindir", "--log", "--instdir", "--root"):
            return None  # another administrative directory: not the image's alternatives
        if not rest[0].startswith("--"):
            return None  # --remove, --set, --config ... take operands; only --install adds a choice
        rest.pop(0)
    if len(rest) < 5:
        return None
    _, link, name, path, priority, *rest = rest
    if not re.fullmatch(r"-?[0-9]{1,9}", priority):
        return None
    slaves: list[Link] = []
    while len(rest) >= 4 and rest[0] == "--slave":
        if len(slaves) == MAX_SLAVES:
            raise UnsafeArchiveError(f"postinst: more than {MAX_SLAVES} slaves of {name!r}", where=where)
        slaves.append(_link(rest[1], rest[2], rest[3], where))
        rest = rest[4:]
    return Choice(_link(link, name, path, where), int(priority), tuple(slaves), package, where)


def declared(package: str, postinst: bytes, where: str) -> list[Choice]:
    """Every ``update-alternatives --install`` a package's ``postinst`` makes with literal arguments."""
    if b"update-alternatives" not in postinst:
        return []
    found: list[Choice] = []
    for line in _logical_lines(postinst.decode("utf-8", "surrogateescape")):
        if "update-alternatives" not in line:
            continue
        words = _tokens(line)
        for start, word in enumerate(words):
            if word.rpartition("/")[2] != "update-alternatives":
                continue
            call = []
            for arg in words[start + 1 :]:
                if arg in (";", "&", "&&", "||", "|", "(", ")", ";;"):
                    break
                call.append(arg)
            if any("$" in arg or "`" in arg for arg in call):
                continue  # computed by the script: unknowable without running it
            choice = _parse_call(call, package, where)
            if choice is not None:
                if len(found) == MAX_DECLARED:
                    raise UnsafeArchiveError(f"postinst: more than {MAX_DECLARED} alternatives", where=where)
                found.append(choice)
    return found


def select(choices: Sequence[Choice], exists: Callable[[str], bool]) -> list[Selection]:
    """Per alternative name, what ``--auto`` mode chooses among ``choices`` (in installation order)
    whose path ``exists``; slaves whose path does not exist are dropped from each choice."""
    by_name: dict[str, list[Choice]] = {}
    for choice in choices:
        if not exists(choice.master.path):
            continue  # update-alternatives refuses a choice whose path is missing
        kept = tuple(slave for slave in choice.slaves if exists(slave.path))
        by_name.setdefault(choice.master.name, []).append(
            Choice(choice.master, choice.priority, kept, choice.package, choice.where)
        )
    selections = []
    for name in sorted(by_name):
        # A later --install of the same path replaces the earlier one's priority and slaves.
        unique: dict[str, Choice] = {}
        for choice in by_name[name]:
            unique[choice.master.path] = choice
        group = list(unique.values())  # installation order, each path once
        best = group[0]
        for choice in group[1:]:
            if choice.priority > best.priority:  # strictly higher: the first declared wins a tie
                best = choice
        selections.append(Selection(best, tuple(sorted(group, key=lambda c: c.master.path))))
    return selections
