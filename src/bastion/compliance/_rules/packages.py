"""Package rules: what software the image can run, and how it could get more.

CCI-000381 (CM-7 a, only essential capabilities) as RHEL-07-021710 uses it for "must not have the
telnet-server package installed"; CCI-001749 (CM-5 (3), install only signed software) as
RHEL-08-010370 uses it for gpgcheck.
"""

from __future__ import annotations

import re

from debian.deb822 import Deb822

from bastion.compliance._model import Area, Outcome, Result, RuleConfig, Severity
from bastion.compliance._rules._context import DPKG_STATUS, Context
from bastion.compliance._rules._registry import not_applicable, passed, rule, verdict
from bastion.image import FileKind

_SHELLS = frozenset(
    [
        "sh",
        "bash",
        "rbash",
        "dash",
        "zsh",
        "ksh",
        "ksh93",
        "mksh",
        "pdksh",
        "csh",
        "tcsh",
        "bsd-csh",
        "fish",
        "yash",
        "posh",
        "ash",
        "busybox",
        "toybox",
    ]
)
_PACKAGE_MANAGERS = frozenset(
    [
        "apt",
        "apt-get",
        "apt-cache",
        "apt-mark",
        "aptitude",
        "dpkg",
        "rpm",
        "yum",
        "dnf",
        "microdnf",
        "zypper",
        "apk",
        "pacman",
        "opkg",
    ]
)
_PACKAGE_MANAGER_PREFIXES = ("dpkg-", "apt-")
_REMOTE_ACCESS = frozenset(
    [
        "sshd",
        "dropbear",
        "telnetd",
        "in.telnetd",
        "rshd",
        "in.rshd",
        "rlogind",
        "in.rlogind",
        "Xvnc",
        "x11vnc",
        "vncserver",
        "Xtigervnc",
        "tigervncserver",
        "xrdp",
    ]
)
_TOOLCHAIN = frozenset(
    ["cc", "c++", "gcc", "g++", "clang", "clang++", "tcc", "gdb", "lldb", "strace", "ltrace", "valgrind"]
)
_TOOLCHAIN_PREFIXES = ("gcc-", "g++-", "clang-", "gdb-")

# sources.list(5): options that turn off signature checking, in one-line ("[trusted=yes]") and deb822
# ("Trusted: yes") form; apt.conf(5) switches with the same effect.
_INSECURE_OPTIONS = ("trusted", "allow-insecure", "allow-weak", "allow-downgrade-to-insecure")
_ONE_LINE_OPTIONS = re.compile(r"^\s*deb(?:-src)?\s+\[([^\]]*)\]")
_APT_CONF_INSECURE = re.compile(
    r"(APT::Get::AllowUnauthenticated|Acquire::AllowInsecureRepositories|Acquire::AllowWeakRepositories"
    r"|Acquire::AllowDowngradeToInsecureRepositories)\s+\"?(?:true|yes|1|on)\"?",
    re.I,
)
_YES = ("yes", "true", "1", "on")


def _runtime_only(ctx: Context, config: RuleConfig) -> Outcome | None:
    if ctx.is_runtime or not config.param("runtime_only"):
        return None
    return not_applicable(
        f"not a runtime image (variant {ctx.variant or 'unlabelled'}, with a dpkg database): "
        "development images keep shells and package managers on purpose"
    )


def _absent(found: list[str], what: str) -> Outcome:
    if not found:
        return passed(f"no {what} in the command directories")
    return Outcome(Result.FAIL, f"{len(found)} {what} installed", tuple(found))


@rule(
    "packages_no_shells",
    area=Area.PACKAGES,
    title="Runtime images contain no shell",
    severity=Severity.HIGH,
    description="A runtime image has no command interpreter (sh, bash, dash, zsh, busybox, ...) in its "
    "command directories. With runtime_only: false the rule applies to every variant.",
    rationale="A shell is the first tool of anyone who gets code execution in a container; a runtime "
    "image runs one program and needs none.",
    cis=("4.3",),
    cci=("CCI-000381",),
    params={"runtime_only": True},
)
def no_shells(ctx: Context, config: RuleConfig) -> Outcome:
    if (skip := _runtime_only(ctx, config)) is not None:
        return skip
    return _absent(ctx.executables(_SHELLS), "shell(s)")


@rule(
    "packages_no_package_managers",
    area=Area.PACKAGES,
    title="Runtime images contain no package manager",
    severity=Severity.HIGH,
    description="A runtime image has no apt, dpkg, rpm, apk or other package manager. With "
    "runtime_only: false the rule applies to every variant.",
    rationale="A package manager lets a compromised container install any tool it wants; runtime "
    "images are changed by rebuilding them.",
    cis=("4.3",),
    cci=("CCI-000381",),
    params={"runtime_only": True},
)
def no_package_managers(ctx: Context, config: RuleConfig) -> Outcome:
    if (skip := _runtime_only(ctx, config)) is not None:
        return skip
    return _absent(ctx.executables(_PACKAGE_MANAGERS, _PACKAGE_MANAGER_PREFIXES), "package manager(s)")


@rule(
    "packages_no_remote_access_daemons",
    area=Area.PACKAGES,
    title="No remote-access daemons",
    severity=Severity.HIGH,
    description="No sshd, dropbear, telnetd, rshd, rlogind, VNC or RDP server is installed.",
    rationale="Remote-access daemons add an authentication surface and a way into the container "
    "around the runtime's controls.",
    cis=("4.3",),
    cci=("CCI-000381",),
)
def no_remote_access_daemons(ctx: Context, config: RuleConfig) -> Outcome:
    return _absent(ctx.executables(_REMOTE_ACCESS), "remote-access daemon(s)")


@rule(
    "packages_no_compilers_debuggers",
    area=Area.PACKAGES,
    title="No compilers or debuggers",
    severity=Severity.MEDIUM,
    description="No C compiler (cc, gcc, clang, tcc) or debugger/tracer (gdb, lldb, strace, ltrace, "
    "valgrind) is installed.",
    rationale="Compilers let an attacker build tools in place; debuggers and tracers read and alter "
    "other processes' memory.",
    cis=("4.3",),
    cci=("CCI-000381",),
)
def no_compilers_debuggers(ctx: Context, config: RuleConfig) -> Outcome:
    return _absent(ctx.executables(_TOOLCHAIN, _TOOLCHAIN_PREFIXES), "compiler(s) or debugger(s)")


def _sources_findings(ctx: Context) -> tuple[list[str], int]:  # noqa: PLR0912  (one check per field of an apt source)
    findings: list[str] = []
    checked = 0
    for path in sorted(ctx.files):
        if not path.startswith("/etc/apt/"):
            continue
        text = ctx.text(path) if path.endswith((".list", ".sources")) or "/apt.conf" in path else None
        if text is None:
            continue
        checked += 1
        if path.endswith(".list"):
            for number, line in enumerate(text.splitlines(), start=1):
                match = _ONE_LINE_OPTIONS.match(line)
                options = match.group(1).split() if match else []
                for option in options:
                    key, _, value = option.partition("=")
                    if key.lower() in _INSECURE_OPTIONS and value.lower() in _YES:
                        findings.append(f"{path}:{number}: {option}")
        elif path.endswith(".sources"):
            for number, paragraph in enumerate(Deb822.iter_paragraphs(text.splitlines()), start=1):
                for key, value in paragraph.items():
                    if key.lower() in _INSECURE_OPTIONS and value.strip().lower() in _YES:
                        findings.append(f"{path}: stanza {number}: {key}: {value.strip()}")
        else:
            for number, line in enumerate(text.splitlines(), start=1):
                if _APT_CONF_INSECURE.search(line.split("//", 1)[0]):
                    findings.append(f"{path}:{number}: {line.strip()}")
    return findings, checked


@rule(
    "packages_signed_sources",
    area=Area.PACKAGES,
    title="Package sources are signature-checked",
    severity=Severity.HIGH,
    description="No APT source is marked trusted=yes, allow-insecure, allow-weak or "
    "allow-downgrade-to-insecure, and no apt.conf switch allows unauthenticated packages.",
    rationale="Without signature checking, whoever controls the network or the mirror chooses what "
    "software gets installed.",
    cis=("4.11",),
    cci=("CCI-001749",),
)
def signed_sources(ctx: Context, config: RuleConfig) -> Outcome:
    findings, checked = _sources_findings(ctx)
    if not checked:
        return not_applicable("no APT sources or configuration in the image")
    return verdict(
        findings, ok=f"{checked} APT file(s) keep signature checking", bad="{n} insecure APT setting(s)"
    )


@rule(
    "packages_no_caches",
    area=Area.PACKAGES,
    title="No leftover package caches",
    severity=Severity.LOW,
    description="No downloaded .deb under /var/cache/apt/archives, no APT cache files "
    "(/var/cache/apt/*.bin) and no package lists under /var/lib/apt/lists.",
    rationale="Caches are dead weight and stale data: old package lists mislead tools and old archives "
    "may be installed later without a fresh signature check.",
)
def no_caches(ctx: Context, config: RuleConfig) -> Outcome:
    findings = []
    for path, info in sorted(ctx.files.items()):
        if info.kind is FileKind.DIRECTORY:
            continue
        directory, _, base = path.rpartition("/")
        if (
            (directory == "/var/cache/apt/archives" and base.endswith(".deb"))
            or (directory == "/var/cache/apt" and base.endswith(".bin"))
            or (path.startswith("/var/lib/apt/lists/") and base != "lock" and "/partial/" not in path)
        ):
            findings.append(f"{path} ({info.size} bytes)")
    return verdict(findings, ok="no package caches", bad="{n} cached package file(s)")


@rule(
    "packages_database_present",
    area=Area.PACKAGES,
    title="The image records its packages",
    severity=Severity.LOW,
    description="The image has a dpkg database: /var/lib/dpkg/status with entries, or "
    "/var/lib/dpkg/status.d with one control file per package.",
    rationale="Vulnerability scanners and SBOM tools learn what an image contains from its package "
    "database; an image without one cannot be scanned for known vulnerabilities.",
)
def database_present(ctx: Context, config: RuleConfig) -> Outcome:
    status = ctx.read(DPKG_STATUS) or b""
    entries = status.count(b"\nPackage: ") + status.startswith(b"Package: ")
    status_d = [p for p in ctx.files if p.startswith("/var/lib/dpkg/status.d/")]
    if entries or status_d:
        return passed(f"{entries} package(s) in {DPKG_STATUS}, {len(status_d)} file(s) in status.d")
    return Outcome(Result.FAIL, "no dpkg database", (DPKG_STATUS, "/var/lib/dpkg/status.d/"))
