"""File rules, judged by the numeric owners and modes the layers record (never the extracted copy's),
resolved against the image's own /etc/passwd and /etc/group.

CCIs from the RHEL 8 STIG requirements checking the same property:

* RHEL-08-010190 / OL08-00-010190 (sticky bit on public directories): CCI-001090;
* RHEL-08-010780, RHEL-08-010790 (valid owner, valid group) and RHEL-08-010730 (home directories
  0750 or less): CCI-000366;
* RHEL-08-010300, RHEL-08-010310 (system commands not writable by others, owned by root): CCI-001499.
"""

from __future__ import annotations

from bastion.compliance._model import Area, Outcome, RuleConfig, Severity
from bastion.compliance._rules._context import Context, matches
from bastion.compliance._rules._registry import rule, verdict
from bastion.image import FileInfo, FileKind

_WORLD_WRITE = 0o002
_GROUP_WORLD_WRITE = 0o022
_STICKY = 0o1000
_SETID = 0o6000
_DEVICES = (FileKind.CHAR_DEVICE, FileKind.BLOCK_DEVICE)
# A symlink's mode means nothing (symlink(7)); device permissions are the device rule's business.
_NO_MODE = (FileKind.SYMLINK, *_DEVICES)
_SYSTEM_DIRS = ("/bin", "/sbin", "/usr", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/boot")
# Paths inside the image, not temporary files of ours (hence the S108 exemption).
_TEMPORARY_DIRS = ("/tmp", "/var/tmp", "/var/lock", "/run/lock", "/dev/shm")  # noqa: S108
_CAPABILITY_XATTR = "security.capability"  # capabilities(7), "File capabilities"


def _under(path: str, roots: tuple[str, ...]) -> bool:
    return any(path == r or path.startswith(r + "/") for r in roots)


def _mode(info: FileInfo) -> str:
    return f"{info.path} mode {info.mode:04o} uid {info.uid} gid {info.gid}"


@rule(
    "files_no_world_writable",
    area=Area.FILES,
    title="Nothing is world-writable outside the temporary directories",
    severity=Severity.MEDIUM,
    description="No file, directory, FIFO or socket has the world-write bit, except the directories of "
    "the allowlist (by default /tmp, /var/tmp, /var/lock, /run/lock and /dev/shm).",
    rationale="A world-writable file can be changed by every process in the container, whatever user "
    "it runs as: code and configuration must only change through a new image.",
    allow=_TEMPORARY_DIRS,
)
def no_world_writable(ctx: Context, config: RuleConfig) -> Outcome:
    findings = [
        _mode(info)
        for info in ctx.files.values()
        if info.kind not in _NO_MODE
        and info.mode & _WORLD_WRITE
        and not (info.kind is FileKind.DIRECTORY and matches(info.path, config.allow))
    ]
    return verdict(
        sorted(findings), ok="nothing world-writable outside the allowlist", bad="{n} world-writable path(s)"
    )


@rule(
    "files_world_writable_dirs_sticky",
    area=Area.FILES,
    title="World-writable directories have the sticky bit",
    severity=Severity.MEDIUM,
    description="Every world-writable directory, allowlisted or not, has the sticky bit (mode 1000).",
    rationale="Without the sticky bit any user may delete or replace another user's files in a shared "
    "directory (unauthorised information transfer via shared resources).",
    cci=("CCI-001090",),
)
def world_writable_dirs_sticky(ctx: Context, config: RuleConfig) -> Outcome:
    findings = [
        _mode(info)
        for info in ctx.files.values()
        if info.kind is FileKind.DIRECTORY and info.mode & _WORLD_WRITE and not info.mode & _STICKY
    ]
    return verdict(
        sorted(findings),
        ok="every world-writable directory is sticky",
        bad="{n} directory(ies) without the sticky bit",
    )


@rule(
    "files_valid_owner",
    area=Area.FILES,
    title="Every file's owner is a user of the image",
    severity=Severity.MEDIUM,
    description="The uid of every path is an account of the image's /etc/passwd.",
    rationale="A file owned by a uid without an account belongs to whoever gets that uid next, and "
    "cannot be attributed or audited.",
    cci=("CCI-000366",),
)
def valid_owner(ctx: Context, config: RuleConfig) -> Outcome:
    uids = ctx.uids
    findings = [
        _mode(i) for i in ctx.files.values() if i.uid not in uids and not matches(i.path, config.allow)
    ]
    return verdict(
        sorted(findings), ok="every owner is a user of /etc/passwd", bad="{n} path(s) with an unknown owner"
    )


@rule(
    "files_valid_group",
    area=Area.FILES,
    title="Every file's group is a group of the image",
    severity=Severity.MEDIUM,
    description="The gid of every path is a group of the image's /etc/group.",
    rationale="A file whose group has no entry grants its group permissions to whichever group gets "
    "that gid next, and cannot be audited.",
    cci=("CCI-000366",),
)
def valid_group(ctx: Context, config: RuleConfig) -> Outcome:
    gids = ctx.gids
    findings = [
        _mode(i) for i in ctx.files.values() if i.gid not in gids and not matches(i.path, config.allow)
    ]
    return verdict(
        sorted(findings), ok="every group is a group of /etc/group", bad="{n} path(s) with an unknown group"
    )


@rule(
    "files_no_setid",
    area=Area.FILES,
    title="No setuid or setgid files outside the allowlist",
    severity=Severity.HIGH,
    description="No file has the setuid or setgid bit unless the profile allowlists it (the default "
    "allowlist is empty). Setgid on directories (group inheritance) is not a privilege and is ignored.",
    rationale="A setuid or setgid program runs with its owner's or group's privileges whoever starts "
    "it: each one is a path to privilege escalation inside the container.",
    cis=("4.8",),
)
def no_setid(ctx: Context, config: RuleConfig) -> Outcome:
    findings = [
        _mode(info)
        for info in ctx.files.values()
        if info.kind in (FileKind.FILE, FileKind.HARDLINK)
        and info.mode & _SETID
        and not matches(info.path, config.allow)
    ]
    return verdict(sorted(findings), ok="no setuid or setgid file", bad="{n} setuid/setgid file(s)")


@rule(
    "files_no_capabilities",
    area=Area.FILES,
    title="No file capabilities outside the allowlist",
    severity=Severity.HIGH,
    description="No file carries a security.capability extended attribute unless allowlisted.",
    rationale="File capabilities grant privileges on execution like setuid does, only less visibly "
    "(capabilities(7)).",
)
def no_capabilities(ctx: Context, config: RuleConfig) -> Outcome:
    findings = [
        f"{info.path} has {_CAPABILITY_XATTR} ({len(info.xattrs[_CAPABILITY_XATTR])} bytes)"
        for info in ctx.files.values()
        if _CAPABILITY_XATTR in info.xattrs and not matches(info.path, config.allow)
    ]
    return verdict(sorted(findings), ok="no file capabilities", bad="{n} file(s) with capabilities")


@rule(
    "files_system_owned_by_root",
    area=Area.FILES,
    title="System directories and their contents are owned by root",
    severity=Severity.MEDIUM,
    description="Every path at or below /bin, /sbin, /usr, /etc, /lib*, /boot is owned by uid 0 and "
    "belongs to group 0, or to a group the parameter groups names (by default shadow, the group "
    "shadow(5) gives /etc/shadow and /etc/gshadow).",
    rationale="Whoever owns a system command or library can change what every process runs; the "
    "members of the group it belongs to can as soon as a mode grants the group write access.",
    cci=("CCI-001499",),
    params={"groups": ("shadow",)},
)
def system_owned_by_root(ctx: Context, config: RuleConfig) -> Outcome:
    # RHEL-08-010310 (owned by root) and RHEL-08-010320 (group-owned by root): both owners count.
    allowed_groups = set(config.param_list("groups"))
    findings = []
    for info in ctx.files.values():
        if not _under(info.path, _SYSTEM_DIRS) or matches(info.path, config.allow):
            continue
        group = ctx.group_name(info.gid)
        if info.uid != 0:
            findings.append(f"{_mode(info)}: not owned by root")
        elif info.gid != 0 and group not in allowed_groups:
            findings.append(f"{_mode(info)}: group {group or 'unknown'} is not root")
    return verdict(
        sorted(findings),
        ok="system paths are owned by root (user and group)",
        bad="{n} system path(s) not owned by root",
    )


@rule(
    "files_system_not_writable",
    area=Area.FILES,
    title="System directories and their contents are not group- or world-writable",
    severity=Severity.MEDIUM,
    description="No path at or below /bin, /sbin, /usr, /etc, /lib*, /boot has the group- or "
    "world-write bit (symlinks excepted: their mode is meaningless).",
    rationale="A group-writable system command or library can be replaced by every member of its "
    "group, and so can what every process runs.",
    cci=("CCI-001499",),
)
def system_not_writable(ctx: Context, config: RuleConfig) -> Outcome:
    findings = [
        _mode(i)
        for i in ctx.files.values()
        if _under(i.path, _SYSTEM_DIRS)
        and i.kind not in _NO_MODE
        and i.mode & _GROUP_WORLD_WRITE
        and not matches(i.path, config.allow)
    ]
    return verdict(
        sorted(findings), ok="no system path is group- or world-writable", bad="{n} writable system path(s)"
    )


@rule(
    "files_no_devices_outside_dev",
    area=Area.FILES,
    title="No device nodes outside /dev",
    severity=Severity.MEDIUM,
    description="No character or block device node exists outside /dev.",
    rationale="A device node gives whoever may open it direct access to the host device it names; "
    "the runtime provides /dev, an image never needs to.",
)
def no_devices_outside_dev(ctx: Context, config: RuleConfig) -> Outcome:
    findings = [
        f"{i.path} ({i.kind.value})"
        for i in ctx.files.values()
        if i.kind in _DEVICES and not _under(i.path, ("/dev",))
    ]
    return verdict(sorted(findings), ok="no device node outside /dev", bad="{n} device node(s) outside /dev")


def _homes(ctx: Context, config: RuleConfig) -> list[tuple[str, int, FileInfo]]:
    homes = []
    for entry in ctx.passwd:
        if entry.home in ("", "/") or matches(entry.home, config.allow):
            continue
        info = ctx.resolve(entry.home)
        if info is not None and info.kind is FileKind.DIRECTORY:
            homes.append((entry.name, entry.uid, info))
    return homes


@rule(
    "files_home_dirs_mode",
    area=Area.FILES,
    title="Home directories are 0750 or more restrictive",
    severity=Severity.MEDIUM,
    description="Every home directory of /etc/passwd that exists in the image has no group-write and "
    "no world permission bits.",
    rationale="Home directories hold credentials and histories; others must not read or plant files there.",
    cci=("CCI-000366",),
)
def home_dirs_mode(ctx: Context, config: RuleConfig) -> Outcome:
    findings = [f"{name}: {_mode(info)}" for name, _, info in _homes(ctx, config) if info.mode & 0o027]
    return verdict(findings, ok="home directories are 0750 or less", bad="{n} home directory(ies) too open")


@rule(
    "files_home_dirs_owned",
    area=Area.FILES,
    title="Home directories are owned by their user",
    severity=Severity.LOW,
    description="Every home directory of /etc/passwd that exists in the image is owned by its user.",
    rationale="A home directory owned by someone else lets that someone control the user's startup "
    "files and keys.",
)
def home_dirs_owned(ctx: Context, config: RuleConfig) -> Outcome:
    findings = [f"{name}: {_mode(info)}" for name, uid, info in _homes(ctx, config) if info.uid != uid]
    return verdict(
        findings,
        ok="home directories are owned by their users",
        bad="{n} home directory(ies) owned by others",
    )
