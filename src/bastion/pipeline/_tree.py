"""The tree the image tests run over, written as a directory; files of packages hard-linked to verified copies.

The image tests need the image as a directory (:func:`materialise`). Creating
each of its files anew is most of what writing it costs on a journalled disk, while a hard link to a
file that already exists only adds a name. So, when Bastion runs as root (the tests then mount the tree
as the lower layer of an overlay of their own, which no test can write through: the kernel copies a
file up to the test's upper layer before changing it), a file the tree takes unchanged from a package
is a link to a copy kept under ``<cache>/unpacked/linked/<sha[:2]>/<sha256>-<mode>-<uid>-<gid>``: its
content's SHA256, the mode the tree gives it (octal) and the host owner it has there. The name says
everything about the inode, so every tree needing that file with that mode and owner can share it.

A copy is written from the bytes :class:`~bastion.oci.SliceReader` checked against the SHA256 recorded
when the package was unpacked, into a temporary file next to its final name that is renamed into place
whole (two builds making the same copy both succeed). A link is checked once made (a regular file of
the expected size, mode and owners, or the copy is written again), and where links cannot be made
(another filesystem, a file with the most links its filesystem allows) the file is written instead.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from bastion.errors import InputError
from bastion.oci import Slice, SliceReader, remove_abandoned

if TYPE_CHECKING:
    from bastion.pipeline._assemble import Rootfs

__all__ = ["LinkedCopies", "discard_later", "materialise", "wait_discarded"]

_discarding: list[threading.Thread] = []


class LinkedCopies:
    """Hard links into the copies kept under ``root`` (see the module docs); ``slices`` reads what a
    new copy holds."""

    def __init__(self, root: Path, slices: SliceReader) -> None:
        self.root = root
        self._slices = slices
        self._usable = True

    def link(self, piece: Slice, path: str, target: Path, mode: int, owner: tuple[int, int]) -> bool:
        """Make ``target`` (which must not exist) a link to the copy of ``piece`` with ``mode`` and host
        ``owner``; False when no link can be made here (the caller then writes the file). ``path``
        names the file in messages."""
        if not self._usable or len(piece.sha256) != 64:
            return False
        copy = self.root / piece.sha256[:2] / f"{piece.sha256}-{mode:04o}-{owner[0]}-{owner[1]}"
        for attempt in range(2):
            try:
                os.link(copy, target, follow_symlinks=False)
            except FileNotFoundError:
                if attempt:
                    return False
                self._write(piece, path, copy, mode, owner)
                continue
            except OSError as error:
                if error.errno != errno.EMLINK:  # EXDEV, EPERM ...: not for this tree at all
                    self._usable = False
                return False
            info = target.lstat()
            if (
                stat.S_ISREG(info.st_mode)
                and info.st_size == piece.size
                and stat.S_IMODE(info.st_mode) == mode
                and (info.st_uid, info.st_gid) == owner
            ):
                return True
            target.unlink()  # a damaged copy: made again, and linked once more
            if attempt:
                return False
            self._write(piece, path, copy, mode, owner)
        return False

    def _write(self, piece: Slice, path: str, copy: Path, mode: int, owner: tuple[int, int]) -> None:
        data = self._slices.read_checked(piece, path)
        copy.parent.mkdir(parents=True, exist_ok=True)
        remove_abandoned(copy.parent)  # what a killed build left here
        fd, name = tempfile.mkstemp(prefix=".tmp-", dir=copy.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                os.fchown(out.fileno(), *owner)
                os.fchmod(out.fileno(), mode)
            Path(name).replace(copy)
        except BaseException:
            Path(name).unlink(missing_ok=True)
            raise


def materialise(
    rootfs: Rootfs,
    root: Path,
    *,
    linked: Path | None = None,
    owner: Callable[[int, int], tuple[int, int]] | None = None,
) -> None:
    """Write the tree as the new directory ``root`` (see the module docs for how it differs from the
    image: no setuid or setgid bits, always readable and writable by its owner) and record it in
    :attr:`Rootfs.root`. Owners are not applied. Every directory is made here before anything in it,
    so no path is ever resolved through a symlink the tree holds.

    With ``linked`` (and ``owner``, the host ids an image uid and gid become), a file taken unchanged
    from a package is a hard link to a copy kept there with that owner (:class:`LinkedCopies`):
    only for trees nothing writes to (an overlay's lower layer).

    ``root`` is created (its parents too); an existing one must be an empty directory.
    """
    if root.exists() and (not root.is_dir() or root.is_symlink() or any(root.iterdir())):
        raise InputError(
            "the directory to write the tree to exists and is not an empty directory", where=str(root)
        )
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o755)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    with SliceReader(mapped=False) as slices:  # each byte read once: no map keeps the files resident
        copies = LinkedCopies(linked, slices) if linked is not None and owner is not None else None
        _write_tree(rootfs, root, flags, slices, copies, owner)
    for path, node in sorted(rootfs.nodes.items()):
        if node.entry.kind == "hardlink":
            os.link(root / node.entry.linkname, root / path, follow_symlinks=False)
    rootfs.root = root


def _write_tree(
    rootfs: Rootfs,
    root: Path,
    flags: int,
    slices: SliceReader,
    copies: LinkedCopies | None,
    owner: Callable[[int, int], tuple[int, int]] | None,
) -> None:
    """Directories, symlinks and files of :func:`materialise`; each file's bytes checked against the
    SHA256 recorded when its package was unpacked, as a layer's are (the image tests must test what
    the image holds)."""
    for path in sorted(rootfs.nodes):  # a directory sorts before its contents
        entry = rootfs.nodes[path].entry
        target = root / path
        if entry.kind == "dir":
            target.mkdir()
            target.chmod(entry.mode & 0o1777 | 0o700)
        elif entry.kind == "symlink":
            target.symlink_to(entry.linkname)
        elif entry.kind == "hardlink":
            continue  # after every file: the target may sort later
        else:
            mode = entry.mode & 0o1777 | 0o400
            if (
                copies is not None
                and owner is not None
                and isinstance(entry.source, Slice)
                and copies.link(entry.source, path, target, mode, owner(entry.uid, entry.gid))
            ):
                continue
            with os.fdopen(os.open(target, flags, 0o600), "wb") as out:
                if isinstance(entry.source, Slice):
                    out.write(slices.read_checked(entry.source, path))
                else:
                    out.write(entry.content())
                os.fchmod(out.fileno(), mode)


def discard_later(tree: Path, work: Path) -> None:
    """Remove the directory ``tree`` in a thread while the build goes on (removing a tree is the kernel's
    work, done without the interpreter lock); it is first moved into a temporary directory of ``work``,
    which :func:`~bastion.oci.remove_abandoned` clears should the build be killed before it is gone.
    :func:`wait_discarded` waits for every removal started."""
    trash = Path(tempfile.mkdtemp(prefix=".tmp-", dir=work))
    tree.rename(trash / "tree")
    remover = threading.Thread(target=shutil.rmtree, args=(trash,), kwargs={"ignore_errors": True})
    remover.start()  # not a daemon: the interpreter waits for it before exiting
    _discarding.append(remover)


def wait_discarded() -> None:
    """Wait for the removals :func:`discard_later` started (before forking, and before a build returns)."""
    while _discarding:
        _discarding.pop().join()
