"""Host-level requirements of operating-system STIGs that a container image cannot meet or fail: they
are reported ``notapplicable``, each with the reason, so an auditor sees they were considered.

CCIs are those of the RHEL 8 STIG requirements named in each rule's description.
"""

from __future__ import annotations

from bastion.compliance._model import Area, Outcome, RuleConfig, Severity
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
        "Nobody logs in to the container: it has no login service, and every password is locked "
        "(accounts_passwords_locked), so there is no authentication for PAM to control.",
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


for _name, _title, _severity, _description, _reason, _cci in _HOST_RULES:
    rule(
        _name,
        area=Area.HOST,
        title=_title,
        severity=_severity,
        description=_description,
        rationale=_reason,
        cci=_cci,
    )(_not_applicable(_reason))
