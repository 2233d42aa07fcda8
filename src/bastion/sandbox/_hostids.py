"""The unprivileged host ids sandboxed processes (image tests, source builds) run as when Bastion runs as
root (see ``bastion.pipeline._imagetest``'s module docs): id ``n`` in the sandbox is host id
``HOST_ID_BASE + n``, the tree on disk is owned in that block, and the sandbox's user namespace maps all
65,536 ids onto it."""

from __future__ import annotations

import json
import os
import select
import time
from contextlib import suppress
from pathlib import Path

from bastion.errors import EnvironmentProblem, InputError

__all__ = ["HOST_ID_BASE", "HOST_ID_COUNT", "give_to_sandbox", "host_owner", "map_ids"]

#: As root, image id n runs as host id HOST_ID_BASE + n: systemd's "foreign UID range" (0x7FFE0000, 64K
#: ids), which no host account may use. ``BASTION_SANDBOX_ID_BASE`` moves it (a multiple of 65536).
HOST_ID_BASE = 0x7FFE0000
HOST_ID_COUNT = 0x10000
_OVERFLOW = 65534  # the kernel's overflowuid: where ids outside the block are shown


def _id_base() -> int:
    """:data:`HOST_ID_BASE`, or ``BASTION_SANDBOX_ID_BASE`` where it is set."""
    text = os.environ.get("BASTION_SANDBOX_ID_BASE", "").strip()
    if not text:
        return HOST_ID_BASE
    if not text.isdigit() or int(text) % HOST_ID_COUNT or not 0 < int(text) <= 2**32 - 2 * HOST_ID_COUNT:
        raise InputError(
            f"BASTION_SANDBOX_ID_BASE={text!r} is not a positive multiple of 65536 below 2^32",
            hint="unset it to use 2147352576, systemd's range for files of foreign images",
        )
    return int(text)


def host_owner(uid: int, gid: int) -> tuple[int, int]:
    """The host ids that stand for the image's ``uid`` and ``gid`` when Bastion runs as root (image ids
    outside the 64K block are the image's nobody); as another user, the ids themselves."""
    if os.geteuid() != 0:
        return uid, gid
    base = _id_base()
    return (
        base + (uid if 0 <= uid < HOST_ID_COUNT else _OVERFLOW),
        base + (gid if 0 <= gid < HOST_ID_COUNT else _OVERFLOW),
    )


def give_to_sandbox(root: Path) -> None:
    """Move every owner in the tree at ``root`` (ids as the image has them) into the host ids the sandbox
    runs as (:func:`host_owner`); as another user, nothing is changed. Symlinks are not followed."""
    if os.geteuid() != 0:
        return
    base = _id_base()

    def give(path: Path) -> None:
        info = path.lstat()
        if not (base <= info.st_uid < base + HOST_ID_COUNT and base <= info.st_gid < base + HOST_ID_COUNT):
            os.lchown(path, *host_owner(info.st_uid, info.st_gid))

    give(root)
    for directory, dirs, files in os.walk(root):
        for name in (*dirs, *files):
            give(Path(directory, name))


def map_ids(info: int, block: int, deadline: float) -> None:
    """Map every image id to its host id in the user namespace of the child bwrap names on its
    ``--info-fd`` (``info``) and that waits on its ``--userns-block-fd`` to be mapped, then let it go on
    (written to ``block``) whatever happened; both descriptors are closed after. ``deadline`` bounds
    the wait for bwrap's report."""
    try:
        _map(info, deadline)
    finally:
        os.close(info)
        with suppress(BrokenPipeError):
            os.write(block, b"1")
        os.close(block)


def _map(info: int, deadline: float) -> None:
    """user_namespaces(7): written by a process with CAP_SETUID in the parent namespace, any range may
    be mapped."""
    text = b""
    while (
        time.monotonic() < deadline
        and select.select([info], [], [], max(0.0, deadline - time.monotonic()))[0]
    ):
        chunk = os.read(info, 4096)
        if not chunk:
            break
        text += chunk
    try:
        child = int(json.loads(text)["child-pid"])
    except (ValueError, KeyError, TypeError):
        return  # bwrap failed before it made the namespace: its stderr says why
    base = _id_base()
    for table in ("uid_map", "gid_map"):
        try:
            Path(f"/proc/{child}/{table}").write_text(f"0 {base} {HOST_ID_COUNT}\n")
        except OSError as error:
            raise EnvironmentProblem(
                f"cannot map the sandbox's ids ({table}): {error.strerror}",
                hint="sandboxes as root need user namespaces (sysctl user.max_user_namespaces)",
            ) from None
