"""Lock files: resolve a definition once, then build exactly that set again and again."""

from bastion.lock._file import check_lock, lock_path, read_lock, refresh_hint, unsatisfied, write_lock
from bastion.lock._model import LOCK_VERSION, Base, LockedBase, LockedPackage, LockedPlatform, LockFile
from bastion.lock._plan import Planned, fetch_packages, plan

__all__ = [
    "LOCK_VERSION",
    "Base",
    "LockFile",
    "LockedBase",
    "LockedPackage",
    "LockedPlatform",
    "Planned",
    "check_lock",
    "fetch_packages",
    "lock_path",
    "plan",
    "read_lock",
    "refresh_hint",
    "unsatisfied",
    "write_lock",
]
