"""Image configuration rules: the ``config`` object of the OCI image config (image-spec config.md).

References: CIS Docker Benchmark v1.6.0 section 4 ("Container Images and Build File Configuration");
CCI-000382 (CM-7 b, restrict ports and services) as RHEL-08-040030 uses it.
"""

from __future__ import annotations

import math
import re
from collections import Counter

from bastion.compliance._model import Area, Outcome, Result, RuleConfig, Severity
from bastion.compliance._rules._context import COMPLIANCE_LABEL, Context
from bastion.compliance._rules._registry import not_applicable, passed, rule, verdict

# Whole words of the name (TOKENIZERS_PARALLELISM is not a token).
_SECRET_NAME = re.compile(
    r"(?:^|_)(?:PASSWORD|PASSWD|PASSPHRASE|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY|ACCESS_?KEY|CREDENTIALS?"
    r"|AUTH)(?:$|_)",
    re.I,
)
# Well-known credential formats, recognisable whatever the variable is called.
_SECRET_VALUE = re.compile(
    r"AKIA[0-9A-Z]{16}"  # AWS access key id
    r"|gh[pousr]_[A-Za-z0-9]{36,}"  # GitHub tokens
    r"|xox[abprs]-[A-Za-z0-9-]{10,}"  # Slack tokens
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----"
    r"|://[^/\s:@]+:[^/\s@]+@"  # credentials in a URL
)
_TOKEN_ALPHABET = re.compile(r"[A-Za-z0-9+/=_.-]+")


def _entropy(value: str) -> float:
    """Shannon entropy in bits per character."""
    counts = Counter(value)
    return -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())


@rule(
    "image_user_nonroot",
    area=Area.IMAGE,
    title="The image runs as a non-root user",
    severity=Severity.HIGH,
    description="The config User, resolved against the image's own /etc/passwd (a name or a numeric "
    "uid, optionally with a group), must not be uid 0.",
    rationale="A container process running as root is root in the user namespace it starts in: any "
    "escape or mounted host path is reached with full privileges.",
    cis=("4.1",),
)
def user_nonroot(ctx: Context, config: RuleConfig) -> Outcome:
    user = str(ctx.config.get("User") or "")
    if not user:
        return Outcome(Result.FAIL, "no User in the image config: the container runs as root", ("User=",))
    spec = user.partition(":")[0]
    entry = ctx.user(spec)
    if spec.isdigit():
        uid = int(spec)
    elif entry is not None:
        uid = entry.uid
    else:
        return Outcome(
            Result.FAIL, f"User {user!r} is not a user of the image's /etc/passwd", (f"User={user}",)
        )
    if uid == 0:
        return Outcome(Result.FAIL, f"User {user!r} is uid 0 (root)", (f"User={user}", "uid=0"))
    known = f" ({entry.name})" if entry is not None else " (not in /etc/passwd)"
    return passed(f"runs as uid {uid}{known}")


@rule(
    "image_env_no_secrets",
    area=Area.IMAGE,
    title="No secrets in the image environment",
    severity=Severity.HIGH,
    description="Env variables must not carry a secret: no value under a name like PASSWORD, TOKEN or "
    "API_KEY, no value in a well-known credential format, and no long high-entropy token.",
    rationale="The image config is public to everyone who can pull the image, and every container "
    "started from it hands its environment to every child process.",
    cis=("4.10",),
    params={"min_length": 20, "min_entropy": 4.0},
)
def env_no_secrets(ctx: Context, config: RuleConfig) -> Outcome:
    min_length = int(config.param_float("min_length"))
    min_entropy = config.param_float("min_entropy")
    findings = []
    for name, value in ctx.env:
        if not value:
            continue
        if value.startswith("/") and name.upper().endswith(("_FILE", "_PATH", "_DIR")):
            continue  # a path to where the secret is mounted (POSTGRES_PASSWORD_FILE=/run/secrets/db)
        if _SECRET_NAME.search(name):
            findings.append(f"{name}: a value under a secret-like name ({len(value)} characters)")
        elif _SECRET_VALUE.search(value):
            findings.append(f"{name}: the value has the form of a credential")
        elif (
            len(value) >= min_length
            and _TOKEN_ALPHABET.fullmatch(value)
            and not value.startswith("/")
            and _entropy(value) >= min_entropy
        ):
            findings.append(f"{name}: a {len(value)}-character value of {_entropy(value):.1f} bits/character")
    # Values are never quoted in the evidence: the report must not become the leak.
    return verdict(findings, ok="no secret-like values in Env", bad="{n} Env value(s) look like secrets")


def _ports(ctx: Context) -> list[tuple[int, str]]:
    ports = []
    for key in ctx.config.get("ExposedPorts") or {}:
        number, _, protocol = str(key).partition("/")
        if number.isdigit():
            ports.append((int(number), protocol or "tcp"))
    return sorted(ports)


@rule(
    "image_no_privileged_ports",
    area=Area.IMAGE,
    title="No privileged ports exposed",
    severity=Severity.MEDIUM,
    description="ExposedPorts must not list a port below 1024.",
    rationale="Binding a port below 1024 needs CAP_NET_BIND_SERVICE or root; an image that expects to "
    "must be run with privileges it should not need.",
    cci=("CCI-000382",),
)
def no_privileged_ports(ctx: Context, config: RuleConfig) -> Outcome:
    findings = [f"{n}/{p}" for n, p in _ports(ctx) if n < 1024]
    return verdict(findings, ok="no exposed port below 1024", bad="{n} privileged port(s) exposed")


@rule(
    "image_no_remote_access_ports",
    area=Area.IMAGE,
    title="No remote-access ports exposed",
    severity=Severity.HIGH,
    description="ExposedPorts must not list SSH (22), telnet (23), RDP (3389) or VNC (5900-5906).",
    rationale="Containers are entered through the runtime (exec), never through a login service: a "
    "remote-access port is an authentication surface the image should not have.",
    cci=("CCI-000382",),
    params={"ports": ("22", "23", "3389", "5900", "5901", "5902", "5903", "5904", "5905", "5906")},
)
def no_remote_access_ports(ctx: Context, config: RuleConfig) -> Outcome:
    banned = {int(p) for p in config.param_list("ports")}
    findings = [f"{n}/{p}" for n, p in _ports(ctx) if n in banned]
    return verdict(findings, ok="no remote-access port exposed", bad="{n} remote-access port(s) exposed")


@rule(
    "image_no_system_volumes",
    area=Area.IMAGE,
    title="No volumes on system paths",
    severity=Severity.MEDIUM,
    description="Volumes must not be declared on /, or on or under /bin, /boot, /dev, /etc, /lib*, "
    "/proc, /sbin, /sys, /usr or /var/lib/dpkg.",
    rationale="A volume over a system path replaces the image's verified content with whatever the "
    "volume holds, outside every digest and signature.",
    params={
        "paths": (
            *("/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc"),
            *("/sbin", "/sys", "/usr", "/var/lib/dpkg"),
        ),
    },
)
def no_system_volumes(ctx: Context, config: RuleConfig) -> Outcome:
    system = config.param_list("paths")
    findings = []
    for volume in sorted(ctx.config.get("Volumes") or {}):
        path = "/" + str(volume).strip("/")
        if path == "/" or any(path == s or path.startswith(s + "/") for s in system):
            findings.append(path)
    return verdict(findings, ok="no volume on a system path", bad="{n} volume(s) on system paths")


@rule(
    "image_healthcheck",
    area=Area.IMAGE,
    title="The image defines a health check",
    severity=Severity.LOW,
    description="The image config carries a Healthcheck whose test is not NONE. Not applicable to an "
    "image that runs no program of its own (neither Entrypoint nor Cmd): a base image, whose health "
    "check belongs to the images built on it.",
    rationale="Without a health check an orchestrator only sees whether the process exists, not "
    "whether it serves. An image that starts no program has nothing to check.",
    cis=("4.6",),
)
def healthcheck(ctx: Context, config: RuleConfig) -> Outcome:
    check = ctx.config.get("Healthcheck") or {}
    test = check.get("Test") if isinstance(check, dict) else None
    if not test or test == ["NONE"]:
        if not ctx.config.get("Entrypoint") and not ctx.config.get("Cmd"):
            return not_applicable("no Entrypoint or Cmd: the image runs no program of its own to check")
        return Outcome(Result.FAIL, "no Healthcheck in the image config", ("Healthcheck=",))
    return passed(f"health check: {' '.join(str(t) for t in test)}")


@rule(
    "image_provenance_labels",
    area=Area.IMAGE,
    title="The image carries provenance labels",
    severity=Severity.LOW,
    description="The org.opencontainers.image.* labels named in the profile (by default created, title "
    "and version) are present and not empty.",
    rationale="Auditors and scanners identify an image, its version and its build date from the OCI "
    "annotation keys (image-spec annotations.md); an unlabelled image cannot be traced.",
    params={
        "required": (
            "org.opencontainers.image.created",
            "org.opencontainers.image.title",
            "org.opencontainers.image.version",
        )
    },
)
def provenance_labels(ctx: Context, config: RuleConfig) -> Outcome:
    if COMPLIANCE_LABEL in config.param_list("required"):
        # The label records which profiles this evaluation passed: requiring it would be circular.
        return Outcome(
            Result.ERROR,
            f"{COMPLIANCE_LABEL} cannot be required: it is set from the result of this evaluation",
        )
    findings = [f"{label} missing" for label in config.param_list("required") if not ctx.labels.get(label)]
    return verdict(
        findings, ok="every required provenance label is present", bad="{n} provenance label(s) missing"
    )
