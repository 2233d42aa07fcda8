"""Account rules: /etc/passwd, /etc/group and /etc/shadow as the image ships them.

CCIs are those of the RHEL 8 STIG requirements checking the same property: RHEL-08-040200 (only root
has uid 0) and RHEL-08-010121 (no blank passwords): CCI-000366; RHEL-08-020240 (unique user ids):
CCI-000764.
"""

from __future__ import annotations

from collections import Counter

from bastion.compliance._model import Area, Outcome, Result, RuleConfig, Severity
from bastion.compliance._rules._context import BIN_DIRS, Context
from bastion.compliance._rules._registry import not_applicable, passed, rule, verdict


@rule(
    "accounts_files_valid",
    area=Area.ACCOUNTS,
    title="The account files exist and every line parses",
    severity=Severity.MEDIUM,
    description="/etc/passwd and /etc/group exist, and every line of them and of /etc/shadow has its "
    "fields, with numeric ids.",
    rationale="Every account and ownership rule reads these files; a runtime resolving a user name "
    "needs them; a malformed line is read differently by different tools.",
)
def files_valid(ctx: Context, config: RuleConfig) -> Outcome:
    findings = [f"{path} missing" for path in ("/etc/passwd", "/etc/group") if ctx.read(path) is None]
    _ = ctx.passwd, ctx.group, ctx.shadow  # parsing records malformed lines
    findings += ctx.malformed
    return verdict(findings, ok="passwd, group and shadow parse", bad="{n} problem(s) in the account files")


@rule(
    "accounts_only_root_uid0",
    area=Area.ACCOUNTS,
    title="Only root has uid 0",
    severity=Severity.HIGH,
    description="No account other than root has user id 0.",
    rationale="Another uid-0 account is root under another name: it has every privilege and hides "
    "from anyone looking for root.",
    cci=("CCI-000366",),
)
def only_root_uid0(ctx: Context, config: RuleConfig) -> Outcome:
    findings = [f"{e.name} has uid 0" for e in ctx.passwd if e.uid == 0 and e.name != "root"]
    return verdict(findings, ok="only root has uid 0", bad="{n} account(s) besides root have uid 0")


@rule(
    "accounts_no_empty_passwords",
    area=Area.ACCOUNTS,
    title="No account has an empty password",
    severity=Severity.HIGH,
    description="No password field in /etc/passwd or /etc/shadow is empty.",
    rationale="An empty password field lets anyone log in as that account without a password.",
    cci=("CCI-000366",),
)
def no_empty_passwords(ctx: Context, config: RuleConfig) -> Outcome:
    findings = [f"/etc/passwd: {e.name} has an empty password field" for e in ctx.passwd if not e.password]
    findings += [f"/etc/shadow: {e.name} has an empty password field" for e in ctx.shadow if not e.password]
    return verdict(findings, ok="no empty password field", bad="{n} empty password field(s)")


@rule(
    "accounts_passwords_locked",
    area=Area.ACCOUNTS,
    title="Every password is locked",
    severity=Severity.MEDIUM,
    description="Every /etc/shadow password field starts with '!' or '*', and /etc/passwd holds no "
    "password hash (its field is 'x' or locked).",
    rationale="A container is entered through its runtime, never by logging in: a usable password hash "
    "baked into an image is a shared credential that every copy of the image carries.",
)
def passwords_locked(ctx: Context, config: RuleConfig) -> Outcome:
    return verdict(list(ctx.usable_passwords), ok="every password is locked", bad="{n} unlocked password(s)")


@rule(
    "accounts_unique_names",
    area=Area.ACCOUNTS,
    title="User and group names are unique",
    severity=Severity.MEDIUM,
    description="No name appears twice in /etc/passwd, nor twice in /etc/group.",
    rationale="With a duplicated name, which entry applies depends on the tool reading the file: "
    "actions cannot be attributed to one account.",
    cci=("CCI-000764",),
)
def unique_names(ctx: Context, config: RuleConfig) -> Outcome:
    users = Counter(e.name for e in ctx.passwd)
    groups = Counter(e.name for e in ctx.group)
    findings = [f"user {n} appears {c} times" for n, c in sorted(users.items()) if c > 1]
    findings += [f"group {n} appears {c} times" for n, c in sorted(groups.items()) if c > 1]
    return verdict(findings, ok="user and group names are unique", bad="{n} duplicated name(s)")


@rule(
    "accounts_unique_ids",
    area=Area.ACCOUNTS,
    title="User and group ids are unique",
    severity=Severity.MEDIUM,
    description="No uid is shared by two users of /etc/passwd and no gid by two groups of /etc/group.",
    rationale="Files and processes carry numeric ids only: two accounts sharing an id are the same "
    "account to the kernel, whatever their names.",
    cci=("CCI-000764",),
)
def unique_ids(ctx: Context, config: RuleConfig) -> Outcome:
    uids = Counter(e.uid for e in ctx.passwd)
    gids = Counter(e.gid for e in ctx.group)
    findings = [
        f"uid {uid} is shared by {', '.join(e.name for e in ctx.passwd if e.uid == uid)}"
        for uid, count in sorted(uids.items())
        if count > 1
    ]
    findings += [
        f"gid {gid} is shared by {', '.join(e.name for e in ctx.group if e.gid == gid)}"
        for gid, count in sorted(gids.items())
        if count > 1
    ]
    return verdict(findings, ok="user and group ids are unique", bad="{n} shared id(s)")


@rule(
    "accounts_primary_groups_exist",
    area=Area.ACCOUNTS,
    title="Every user's primary group exists",
    severity=Severity.LOW,
    description="The gid of every /etc/passwd entry is a group of /etc/group.",
    rationale="A primary group missing from /etc/group leaves the files that user creates with a "
    "group nobody can name or audit.",
)
def primary_groups_exist(ctx: Context, config: RuleConfig) -> Outcome:
    findings = [f"{e.name}: gid {e.gid} is not in /etc/group" for e in ctx.passwd if e.gid not in ctx.gids]
    return verdict(findings, ok="every primary group exists", bad="{n} user(s) without their group")


@rule(
    "accounts_nologin_shells",
    area=Area.ACCOUNTS,
    title="Accounts of a runtime image have no login shell",
    severity=Severity.MEDIUM,
    description="In a runtime image every account's shell is nologin or false (the program itself need "
    "not be in the image: a shell that is not there cannot start either, and the message says so).",
    rationale="Nobody logs in to a runtime container; a login shell is a capability no account there "
    "needs. Development images keep root's shell on purpose.",
    params={
        "shells": ("/usr/sbin/nologin", "/sbin/nologin", "/bin/false", "/usr/bin/false"),
    },
)
def nologin_shells(ctx: Context, config: RuleConfig) -> Outcome:
    if not ctx.is_runtime:
        return not_applicable(
            f"not a runtime image (variant {ctx.variant or 'unlabelled'}, dpkg database present)"
        )
    allowed = set(config.param_list("shells"))
    findings = [f"{e.name}: {e.shell or '(empty: /bin/sh)'}" for e in ctx.passwd if e.shell not in allowed]
    if findings:
        return verdict(findings, ok="", bad="{n} account(s) with a login shell")
    # passwd(5): the shell is the program login runs. One that is named but not shipped cannot start
    # either (exec fails), which is as non-login as nologin itself; the message says so rather than
    # claiming the program is there.
    missing = sorted({e.shell for e in ctx.passwd if ctx.regular_file(e.shell) is None})
    if missing:
        return Outcome(
            Result.PASS,
            f"every account's shell is a non-login shell; {', '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} not in the image, so no account can start a shell at all",
        )
    return verdict([], ok="every account has a non-login shell, and it is in the image", bad="")


@rule(
    "accounts_no_privilege_escalation",
    area=Area.ACCOUNTS,
    title="No sudo, doas or pkexec",
    severity=Severity.HIGH,
    description="None of sudo, sudoedit, doas or pkexec is installed in a command directory.",
    rationale="These tools exist to turn an unprivileged process into root; in a container the "
    "privileges a process needs are granted by the runtime, not from inside.",
)
def no_privilege_escalation(ctx: Context, config: RuleConfig) -> Outcome:
    findings = ctx.executables(frozenset({"sudo", "sudoedit", "doas", "pkexec"}))
    if not findings:
        return passed(f"none in {', '.join(BIN_DIRS)}")
    return Outcome(Result.FAIL, f"{len(findings)} privilege escalation tool(s) installed", tuple(findings))


@rule(
    "accounts_file_permissions",
    area=Area.ACCOUNTS,
    title="Account files have safe owners and modes",
    severity=Severity.MEDIUM,
    description="/etc/passwd and /etc/group are owned by root and not writable by others; /etc/shadow "
    "and /etc/gshadow are owned by root and not readable by others (0640 or less).",
    rationale="Whoever can write the account files can make themselves root; whoever can read shadow "
    "can attack its hashes offline.",
)
def file_permissions(ctx: Context, config: RuleConfig) -> Outcome:
    findings = []
    for path, forbidden in (
        ("/etc/passwd", 0o022),
        ("/etc/group", 0o022),
        ("/etc/shadow", 0o137),
        ("/etc/gshadow", 0o137),
    ):
        info = ctx.files.get(path)
        if info is None:
            continue
        if info.uid != 0:
            findings.append(f"{path} owned by uid {info.uid}")
        if info.mode & forbidden:
            findings.append(f"{path} mode {info.mode:04o} (must not have {forbidden:04o})")
    return verdict(findings, ok="account files are root-owned with safe modes", bad="{n} problem(s)")
