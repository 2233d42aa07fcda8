"""Host-level requirements of operating-system STIGs that a container image cannot meet or fail: they
are reported ``notapplicable``, each with the reason, so an auditor sees they were considered.

CCIs are those of the RHEL 8 STIG requirements named in each rule's description.
"""

from __future__ import annotations

from bastion.compliance._model import Area, Outcome, Result, RuleConfig, Severity
from bastion.compliance._rules._context import Context
from bastion.compliance._rules._registry import Check, not_applicable, rule

#: (name, title, severity, description, why not applicable, CCIs)
_HOST_RULES: tuple[tuple[str, str, Severity, str, str, tuple[str, ...]], ...] = (
    (
        "host_kernel_parameters",
        "Kernel parameters (sysctl, ASLR, FIPS mode)",
        Severity.MEDIUM,
        "Kernel parameters such as kernel.randomize_va_space (RHEL-08-010430) and the fips=1 boot "
        "option are set as the STIG requires.",
        "A container shares the host's kernel: its parameters are set on the host, and namespaced "
        "sysctls by the container runtime, never by the image.",
        ("CCI-002824",),
    ),
    (
        "host_audit",
        "Audit daemon and audit rules",
        Severity.MEDIUM,
        "auditd is installed and running with the required rules (RHEL-08-030181).",
        "Kernel auditing is a host facility: a container cannot run auditd, and the host's audit "
        "rules record container processes.",
        ("CCI-000169",),
    ),
    (
        "host_partitions",
        "Separate file systems for /home, /var, /tmp",
        Severity.MEDIUM,
        "Directories such as /home live on separate partitions (RHEL-08-010800).",
        "An image is a set of layers mounted by the runtime: partitions and mount options are decided "
        "by the host and the runtime's volume configuration.",
        ("CCI-000366",),
    ),
    (
        "host_pam_lockout",
        "Account lockout and password quality (PAM)",
        Severity.MEDIUM,
        "PAM locks accounts after failed logons (RHEL-08-020010) and enforces password quality.",
        "Nobody logs in to a container through PAM when no account has a usable password: then there "
        "is no password authentication for PAM to lock out. Not applicable only when every password "
        "is locked (accounts_passwords_locked); otherwise not checked, since Bastion does not read "
        "PAM's configuration.",
        ("CCI-000044",),
    ),
    (
        "host_login_banner",
        "DoD notice and consent banner",
        Severity.MEDIUM,
        "The Standard Mandatory DoD Notice and Consent Banner is shown before logon (RHEL-08-010040).",
        "There is no logon to a container, so there is no place to show a banner; the host and the "
        "orchestrator's access points show it.",
        ("CCI-000048",),
    ),
    (
        "host_bootloader",
        "Boot loader authentication",
        Severity.HIGH,
        "The boot loader requires a superuser password (RHEL-08-010140).",
        "A container image is never booted: it has no boot loader and no kernel of its own.",
        ("CCI-000213",),
    ),
)


def _not_applicable(reason: str) -> Check:
    def check(ctx: Context, config: RuleConfig) -> Outcome:
        return not_applicable(reason)

    return check


def _pam_lockout(ctx: Context, config: RuleConfig) -> Outcome:
    # RHEL-08-020010 constrains password logons; whether one is possible is what
    # accounts_passwords_locked reads, so this rule's reason is that rule's finding, never an assumption.
    usable = ctx.usable_passwords
    if not usable:
        return not_applicable(
            "every password is locked (accounts_passwords_locked): there is no password "
            "authentication for PAM to lock out"
        )
    return Outcome(
        Result.NOTCHECKED,
        f"{len(usable)} account(s) have a usable password (accounts_passwords_locked fails), so a "
        "password logon may be possible; Bastion does not check PAM's lockout configuration",
        tuple(usable),
    )


_CHECKS: dict[str, Check] = {"host_pam_lockout": _pam_lockout}

for _name, _title, _severity, _description, _reason, _cci in _HOST_RULES:
    rule(
        _name,
        area=Area.HOST,
        title=_title,
        severity=_severity,
        description=_description,
        rationale=_reason,
        cci=_cci,
    )(_CHECKS.get(_name) or _not_applicable(_reason))
