"""The image's accounts: ``/etc/passwd``, ``/etc/group``, ``/etc/shadow`` and ``/etc/gshadow``.

No maintainer script runs, so nothing else creates these files (base-passwd would in its postinst).
Every image has the built-in accounts, as distroless images do:

=========  =====  =====  =================  =====================================================
user       uid    gid    home               shell
=========  =====  =====  =================  =====================================================
root       0      0      ``/root``          ``/usr/sbin/nologin`` (runtime), a shell (dev)
nonroot    65532  65532  ``/home/nonroot``  ``/usr/sbin/nologin``
nobody     65534  65534  ``/nonexistent``   ``/usr/sbin/nologin``
=========  =====  =====  =================  =====================================================

and the groups ``root`` 0, ``tty`` 5, ``shadow`` 42, ``staff`` 50 (base-files ships ``/var/local``
as root:staff), ``nonroot`` 65532 and ``nogroup`` 65534. The
definition's ``accounts.users`` and ``accounts.groups`` are added; one with the name of a built-in
replaces it. Two accounts sharing an id is an :class:`~bastion.errors.InputError`. A user whose
primary group does not exist gets a group of its own name (as ``useradd`` does by default); a
redefined ``nonroot`` user takes the built-in ``nonroot`` group along to its new gid.

``nonroot`` is only the default run-as account: a definition that names its own account at 65532
(``{name: nginx, uid: 65532, gid: 65532}``) gets that account instead, and no ``nonroot`` user. The
built-in ``nonroot`` group goes with it, renamed to the user's name, when the user's gid is 65532 and
the definition has no group of that name or id; a definition group with gid 65532 likewise replaces
the built-in ``nonroot`` group. ``root`` and ``nobody`` are never replaced by id.

Every password is locked: ``*`` for system accounts (uid below 1000, and ``nobody``), ``!`` for the
others, the way Debian's base-passwd and ``useradd`` write them. The date of the last password change
is the day of ``SOURCE_DATE_EPOCH``, so the files are reproducible. ``shadow`` and ``gshadow`` are
0640 ``root:shadow``, as on Debian; ``passwd`` and ``group`` are 0644.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from bastion.catalog import Accounts
from bastion.errors import InputError

__all__ = ["AccountFiles", "Group", "Home", "User", "account_files"]

NOLOGIN = "/usr/sbin/nologin"
_NONROOT = 65532  # the default run-as account's uid and gid, as in distroless images
_SYSTEM_LIMIT = 1000  # Debian policy 9.2.2: uids below 1000 are system accounts
_NOBODY = 65534


@dataclass(frozen=True)
class User:
    name: str
    uid: int
    gid: int
    home: str
    shell: str

    @property
    def locked(self) -> str:
        return "*" if self.uid < _SYSTEM_LIMIT or self.uid == _NOBODY else "!"


@dataclass(frozen=True)
class Group:
    name: str
    gid: int

    @property
    def locked(self) -> str:
        return "*" if self.gid < _SYSTEM_LIMIT or self.gid == _NOBODY else "!"


@dataclass(frozen=True)
class Home:
    """A home directory to create (0700, owned by its user) unless the path already exists."""

    path: str
    uid: int
    gid: int


@dataclass(frozen=True)
class AccountFiles:
    """The four files' contents, the accounts they hold, and the homes to create."""

    users: tuple[User, ...]
    groups: tuple[Group, ...]
    passwd: bytes
    group: bytes
    shadow: bytes
    gshadow: bytes
    homes: tuple[Home, ...]

    @property
    def shadow_gid(self) -> int:
        """The owning group of ``shadow`` and ``gshadow``."""
        return next(group.gid for group in self.groups if group.name == "shadow")


def _builtin_users(root_shell: str) -> list[User]:
    return [
        User("root", 0, 0, "/root", root_shell),
        User("nonroot", _NONROOT, _NONROOT, "/home/nonroot", NOLOGIN),
        User("nobody", _NOBODY, _NOBODY, "/nonexistent", NOLOGIN),
    ]


_BUILTIN_GROUPS = (
    Group("root", 0),
    Group("tty", 5),
    Group("shadow", 42),
    Group("staff", 50),
    Group("nonroot", _NONROOT),
    Group("nogroup", _NOBODY),
)


def _check_unique_ids(items: Iterable[User | Group], what: str) -> None:
    seen: dict[int, str] = {}
    for item in items:
        number = item.uid if isinstance(item, User) else item.gid
        if number in seen:
            raise InputError(
                f"{what}s {seen[number]!r} and {item.name!r} have the same id {number}",
                hint="a definition account with a built-in's name (or with nonroot's id 65532) replaces "
                "it; pick another id otherwise",
            )
        seen[number] = item.name


def account_files(accounts: Accounts, *, root_shell: str, source_date_epoch: int) -> AccountFiles:
    """The account files for the built-in accounts merged with the definition's ``accounts``."""
    users = {user.name: user for user in _builtin_users(root_shell)}
    groups = {group.name: group for group in _BUILTIN_GROUPS}
    defined_groups = {group.name for group in accounts.groups}
    # A definition account at 65532 takes the place of the built-in nonroot (see the module docs).
    keeps_nonroot = any(user.name == "nonroot" for user in accounts.users)
    replacing = next((u for u in accounts.users if u.uid == _NONROOT and not keeps_nonroot), None)
    if replacing is not None:
        del users["nonroot"]
        if (
            replacing.gid == _NONROOT
            and replacing.name not in groups
            and not defined_groups & {"nonroot", replacing.name}
            and all(group.gid != _NONROOT for group in accounts.groups)
        ):
            del groups["nonroot"]
            groups[replacing.name] = Group(replacing.name, _NONROOT)
    for defined in accounts.users:
        users[defined.name] = User(
            defined.name, defined.uid, defined.gid, defined.home_directory, defined.shell
        )
    for defined_group in accounts.groups:
        if defined_group.gid == _NONROOT and "nonroot" not in defined_groups:
            groups.pop("nonroot", None)
        groups[defined_group.name] = Group(defined_group.name, defined_group.gid)
    for user in users.values():
        if all(group.gid != user.gid for group in groups.values()):
            if user.name in groups and (user.name in defined_groups or user.name != "nonroot"):
                raise InputError(
                    f"user {user.name!r} has primary group id {user.gid}, which no group has",
                    hint=f"group {user.name!r} exists with id {groups[user.name].gid}; "
                    "add a group with that id under accounts.groups",
                )
            groups[user.name] = Group(user.name, user.gid)
    ordered_users = tuple(sorted(users.values(), key=lambda user: user.uid))
    ordered_groups = tuple(sorted(groups.values(), key=lambda group: group.gid))
    _check_unique_ids(ordered_users, "user")
    _check_unique_ids(ordered_groups, "group")
    if "shadow" not in groups:  # unreachable today: the built-in can be replaced, never removed
        raise InputError("no 'shadow' group to own /etc/shadow")
    day = source_date_epoch // 86400
    # passwd(5), group(5), shadow(5), gshadow(5); the gecos field holds the name, as base-passwd's.
    passwd = "".join(f"{u.name}:x:{u.uid}:{u.gid}:{u.name}:{u.home}:{u.shell}\n" for u in ordered_users)
    group = "".join(f"{g.name}:x:{g.gid}:\n" for g in ordered_groups)
    shadow = "".join(f"{u.name}:{u.locked}:{day}:0:99999:7:::\n" for u in ordered_users)
    gshadow = "".join(f"{g.name}:{g.locked}::\n" for g in ordered_groups)
    homes = tuple(
        Home(user.home.lstrip("/"), user.uid, user.gid)
        for user in ordered_users
        if user.home not in ("/", "/nonexistent")
    )
    return AccountFiles(
        users=ordered_users,
        groups=ordered_groups,
        passwd=passwd.encode(),
        group=group.encode(),
        shadow=shadow.encode(),
        gshadow=gshadow.encode(),
        homes=homes,
    )
