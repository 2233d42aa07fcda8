"""Whether the finished image can start: its program, run-as user and working directory exist in it.

Checked on the final in-memory tree (after runtime hardening and the definition's ``paths``), before
any layer is committed, so a definition whose image could never start writes nothing. What a runtime
does when it starts a container, and so what is checked:

* The program is ``Entrypoint[0]``, else ``Cmd[0]`` (image-spec config.md, "Entrypoint" and "Cmd").
  A name holding a ``/`` is a path (relative ones from ``WorkingDir``); a bare name is looked up in
  the ``PATH`` of the image's ``Env``, as runc does with Go's ``exec.LookPath`` inside the container
  (an empty or relative ``PATH`` entry is taken from ``WorkingDir``). Symlinks resolve inside the
  image, at most 40 of them (the kernel's ``MAXSYMLINKS``). The program must be a regular file with
  an execute bit in a format execve(2) runs: an ELF program, or a script whose ``#!`` interpreter is
  one in turn (execve(2), "Interpreter scripts": the line is read from the first 256 bytes,
  ``BINPRM_BUF_SIZE``, and at most 4 interpreters nest, ``BINPRM_MAX_RECURSION``).
* ``User`` (``accounts.run-as``): a name must be in the image's ``/etc/passwd`` and a group name in
  its ``/etc/group`` (runc refuses to start otherwise); numeric ids need no entry (config.md "User").
* ``WorkingDir`` (``work-dir``) must be a directory of the image.

A missing path that runtime hardening removed says so, with the rule's reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bastion.errors import InputError

if TYPE_CHECKING:
    from bastion.oci import RuntimeConfig
    from bastion.pipeline._assemble import Rootfs

__all__ = ["check_startable", "find_in_tree"]

_MAX_HOPS = 40  # the kernel's MAXSYMLINKS (path_resolution(7))
_SHEBANG_BYTES = 256  # BINPRM_BUF_SIZE: execve(2) reads the #! line from this much of the file
_MAX_INTERPRETERS = 4  # BINPRM_MAX_RECURSION
_MAX_ACCOUNT_FILE = 16 * 1024 * 1024  # a passwd or group file larger than this is not read whole


@dataclass(frozen=True)
class _Found:
    """Where a path led: the tree path reached (``None`` when it stops at a missing path, which is
    then ``missing``), and the kind of what is there."""

    path: str | None
    kind: str = ""
    missing: str = ""


def find_in_tree(rootfs: Rootfs, path: str, cwd: str = "/") -> _Found:
    """Follow ``path`` through the tree as the kernel would inside the image, symlinks included (the one
    resolver of paths in the in-memory tree: hardening asks it whether a link leads anywhere)."""
    start = path if path.startswith("/") else f"{cwd.rstrip('/')}/{path}"
    pending = [part for part in start.split("/") if part not in ("", ".")]
    resolved: list[str] = []
    hops = 0
    while pending:
        part = pending.pop(0)
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        current = "/".join([*resolved, part])
        node = rootfs.nodes.get(current)
        if node is None:
            return _Found(None, missing=current)
        entry = node.entry
        if entry.kind == "symlink":
            hops += 1
            if hops > _MAX_HOPS:
                return _Found(None, missing=current, kind="symlink loop")
            if entry.linkname.startswith("/"):
                resolved = []
            pending[:0] = [p for p in entry.linkname.split("/") if p not in ("", ".")]
            continue
        if entry.kind == "hardlink":
            linked = rootfs.nodes.get(entry.linkname)
            entry = linked.entry if linked is not None else entry
        if pending and entry.kind != "dir":
            return _Found(None, missing=current, kind=entry.kind)
        resolved.append(part)
    final = "/".join(resolved)
    if not final:
        return _Found("", "dir")
    node = rootfs.nodes[final]
    entry = node.entry
    if entry.kind == "hardlink" and entry.linkname in rootfs.nodes:
        entry = rootfs.nodes[entry.linkname].entry
    return _Found(final, entry.kind)


def _why_missing(rootfs: Rootfs, found: _Found) -> str:
    """Why a path is not there: hardening's reason when it removed it (or a directory above it)."""
    if found.kind == "symlink loop":
        return f"too many symlinks at /{found.missing}"
    if found.kind:
        return f"/{found.missing} is a {found.kind}, not a directory"
    return _hardened(rootfs, found.missing) or f"no /{found.missing}"


def _hardened(rootfs: Rootfs, missing: str) -> str | None:
    for removed, reason in rootfs.removed:
        if missing == removed or missing.startswith(f"{removed}/"):
            return f"runtime hardening removed /{removed}: {reason}"
    return None


@dataclass(frozen=True)
class _Problem:
    text: str
    hardened: bool = False  # the path (or an interpreter) was there until runtime hardening


def _executable(rootfs: Rootfs, path: str, cwd: str) -> _Problem | bytes:
    """The first bytes of the regular, executable file ``path`` leads to, or why there is none."""
    found = find_in_tree(rootfs, path, cwd)
    if found.path is None:
        hardened = not found.kind and _hardened(rootfs, found.missing) is not None
        return _Problem(f"{path} is not in the image ({_why_missing(rootfs, found)})", hardened)
    if found.kind != "file":
        return _Problem(f"{path} is a {found.kind} in the image, not a program")
    entry = rootfs.nodes[found.path].entry
    if entry.kind == "hardlink":
        entry = rootfs.nodes[entry.linkname].entry
    if not entry.mode & 0o111:
        return _Problem(f"{path} is not executable in the image (mode {entry.mode & 0o7777:04o})")
    return entry.content(_SHEBANG_BYTES)


def _problem(rootfs: Rootfs, program: str, cwd: str) -> _Problem | None:
    """Why ``program`` cannot be executed in the image, or None when it can (interpreters included)."""
    path, prefix = program, ""
    for _ in range(_MAX_INTERPRETERS + 1):
        head = _executable(rootfs, path, cwd)
        if isinstance(head, _Problem):
            return _Problem(prefix + head.text, head.hardened)
        if head.startswith(b"\x7fELF"):
            return None
        if not head.startswith(b"#!"):
            text = f"{path} is neither an ELF program nor a '#!' script (execve(2) would fail: ENOEXEC)"
            return _Problem(prefix + text)
        line = head[2:].split(b"\n", 1)[0].strip(b" \t")
        if not line:
            return _Problem(f"{prefix}{path} starts with '#!' but names no interpreter")
        prefix = f"{prefix}the '#!' interpreter of {path}: "
        path = line.split(None, 1)[0].decode("utf-8", "replace")
    return _Problem(f"{program}: more than {_MAX_INTERPRETERS} nested '#!' interpreters")


def _program_problem(rootfs: Rootfs, program: str, env: Sequence[str], cwd: str) -> str | None:
    if "/" in program:
        problem = _problem(rootfs, program, cwd)
        return problem.text if problem is not None else None
    search = next((item[5:] for item in env if item.startswith("PATH=")), "")
    hardened = []
    for directory in search.split(":") if search else []:
        problem = _problem(rootfs, f"{directory or '.'}/{program}", cwd)
        if problem is None:
            return None
        if problem.hardened:
            hardened.append(problem.text)
    detail = f" ({hardened[0]})" if hardened else ""
    return f"{program!r} is not found in the image's PATH {search!r}{detail}"


def _names(rootfs: Rootfs, path: str) -> set[str]:
    """The first fields of the image's passwd or group file (empty when it has none)."""
    found = find_in_tree(rootfs, path)
    if found.path is None or found.kind != "file":
        return set()
    text = rootfs.read(found.path) if rootfs.nodes[found.path].entry.size <= _MAX_ACCOUNT_FILE else b""
    return {line.split(b":", 1)[0].decode("utf-8", "replace") for line in text.splitlines() if b":" in line}


def check_startable(rootfs: Rootfs, runtime: RuntimeConfig, *, variant: str, where: str) -> None:
    """Refuse a configuration the image cannot start with (see the module docs).

    Raises :class:`~bastion.errors.InputError` naming ``where`` (the definition file), the variant
    and the field.
    """

    def refuse(field: str, problem: str) -> InputError:
        return InputError(f"variants.{variant}: {field}: {problem}", where=where)

    cwd = runtime.working_dir or "/"
    if runtime.working_dir:
        found = find_in_tree(rootfs, runtime.working_dir)
        if found.path is None:
            why = _why_missing(rootfs, found)
            raise refuse("work-dir", f"{runtime.working_dir} is not in the image ({why})")
        if found.kind != "dir":
            raise refuse("work-dir", f"{runtime.working_dir} is a {found.kind} in the image, not a directory")
    user, _, group = runtime.user.partition(":")
    if user and not user.isdigit() and user not in _names(rootfs, "/etc/passwd"):
        raise refuse("accounts.run-as", f"user {user!r} is not in the image's /etc/passwd")
    if group and not group.isdigit() and group not in _names(rootfs, "/etc/group"):
        raise refuse("accounts.run-as", f"group {group!r} is not in the image's /etc/group")
    field, args = ("entrypoint", runtime.entrypoint) if runtime.entrypoint else ("cmd", runtime.cmd)
    if args and (program := _program_problem(rootfs, args[0], runtime.env, cwd)) is not None:
        raise refuse(field, program)
