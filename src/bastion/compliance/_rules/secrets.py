"""Secret rules: credentials left in the image's files. Evidence names the file, never its content.

CCI-000186 (IA-5 (2) (b), protect private keys) as RHEL-08-010100 uses it.
"""

from __future__ import annotations

import json
import re

from bastion.compliance._model import Area, Outcome, RuleConfig, Severity
from bastion.compliance._rules._context import Context, matches
from bastion.compliance._rules._registry import rule, verdict

# RFC 7468 section 2: "-----BEGIN <label>-----", base64 lines, "-----END <label>-----". Requiring
# real base64 content between the lines tells a key from code that merely names the marker.
_PEM_PRIVATE_KEY = re.compile(
    rb"-----BEGIN ([A-Z0-9 ]*PRIVATE KEY)-----\r?\n(?:[A-Za-z0-9-]+: [^\n]*\r?\n)*\r?\n?"
    rb"[A-Za-z0-9+/=\r\n]{40,}?-----END \1-----"
)
_ELF_MAGIC = b"\x7fELF"  # elf(5): e_ident[EI_MAG0..EI_MAG3]
_SSH_KEY_NAMES = frozenset(
    [
        "id_rsa",
        "id_dsa",
        "id_ecdsa",
        "id_ed25519",
        "id_ecdsa_sk",
        "id_ed25519_sk",
        "identity",
        "authorized_keys",
        "authorized_keys2",
    ]
)
_SSH_HOST_KEY = re.compile(r"ssh_host_[a-z0-9]+_key")
_HISTORIES = frozenset(
    [
        ".bash_history",
        ".zsh_history",
        ".sh_history",
        ".ash_history",
        ".history",
        ".histfile",
        ".python_history",
        ".mysql_history",
        ".psql_history",
        ".sqlite_history",
        ".node_repl_history",
        ".rediscli_history",
    ]
)


@rule(
    "secrets_no_private_keys",
    area=Area.SECRETS,
    title="No private keys in files",
    severity=Severity.HIGH,
    description="No file (up to the size limit) contains a PEM private key block (RFC 7468: RSA, EC, "
    "PKCS #8, encrypted PKCS #8, OpenSSH). Compiled ELF objects are skipped unless the profile sets "
    "scan_binaries: libraries embed public self-test keys (GnuTLS's FIPS known-answer tests).",
    rationale="A private key in an image is published with it: everyone who can pull the image can "
    "impersonate the key's owner.",
    cis=("4.10",),
    cci=("CCI-000186",),
    params={"max_size": 4 * 1024 * 1024, "scan_binaries": False},
)
def no_private_keys(ctx: Context, config: RuleConfig) -> Outcome:
    limit = int(config.param_float("max_size"))
    binaries = bool(config.param("scan_binaries"))
    findings = []
    for info in sorted(ctx.regular_files(), key=lambda i: i.path):
        if info.size > limit or info.size < 100 or matches(info.path, config.allow):
            continue
        if not binaries and (ctx.read(info.path, limit=len(_ELF_MAGIC)) or b"") == _ELF_MAGIC:
            continue  # most of an image's bytes are in ELF objects: not read unless asked
        data = ctx.read(info.path, limit=limit) or b""
        if b"PRIVATE KEY-----" not in data:  # cheap test first: most files have no marker at all
            continue
        labels = sorted({m.group(1).decode() for m in _PEM_PRIVATE_KEY.finditer(data)})
        if labels:
            findings.append(f"{info.path}: {', '.join(labels)}")
    return verdict(findings, ok="no PEM private key in any file", bad="{n} file(s) hold private keys")


@rule(
    "secrets_no_ssh_keys",
    area=Area.SECRETS,
    title="No SSH keys or authorized_keys",
    severity=Severity.HIGH,
    description="No SSH client key (id_rsa, id_ed25519, ...), SSH host key (ssh_host_*_key) or "
    "authorized_keys file is present.",
    rationale="SSH host keys baked into an image are shared by every container started from it; "
    "client keys and authorized_keys grant access to or from somewhere else.",
    cis=("4.10",),
    cci=("CCI-000186",),
)
def no_ssh_keys(ctx: Context, config: RuleConfig) -> Outcome:
    findings = []
    for info in ctx.regular_files():
        base = info.path.rpartition("/")[2]
        if (base in _SSH_KEY_NAMES or _SSH_HOST_KEY.fullmatch(base)) and not matches(info.path, config.allow):
            findings.append(info.path)
    return verdict(sorted(findings), ok="no SSH key material", bad="{n} SSH key file(s)")


def _docker_auths(data: bytes) -> bool:
    try:
        document = json.loads(data)
    except ValueError:
        return False
    auths = document.get("auths") if isinstance(document, dict) else None
    if not isinstance(auths, dict):
        return False
    keys = ("auth", "identitytoken", "registrytoken", "password")
    return any(isinstance(v, dict) and any(v.get(k) for k in keys) for v in auths.values())


def _credential(ctx: Context, path: str) -> str | None:
    """Why the file at ``path`` is a credential file, or ``None``."""
    base = path.rpartition("/")[2]
    if base in (".netrc", "_netrc", ".git-credentials", ".pgpass"):
        return base
    if path.endswith("/.aws/credentials"):
        return "AWS credentials"
    if path.endswith("/.docker/config.json"):
        return "registry credentials (auths)" if _docker_auths(ctx.read(path) or b"") else None
    if base == ".npmrc":
        return "npm token" if re.search(rb"_authToken|_auth\s*=|_password", ctx.read(path) or b"") else None
    if base == ".pypirc":
        return "PyPI password" if re.search(rb"(?m)^\s*password\s*[=:]", ctx.read(path) or b"") else None
    return None


@rule(
    "secrets_no_credential_files",
    area=Area.SECRETS,
    title="No credential files",
    severity=Severity.HIGH,
    description="No .netrc, .git-credentials, .pgpass, .aws/credentials, .docker/config.json with "
    "registry auths, .npmrc with a token or .pypirc with a password.",
    rationale="Credential files left by the build give whoever pulls the image the builder's access "
    "to registries, repositories and clouds.",
    cis=("4.10",),
)
def no_credential_files(ctx: Context, config: RuleConfig) -> Outcome:
    findings = []
    for info in ctx.regular_files():
        if matches(info.path, config.allow):
            continue
        if (why := _credential(ctx, info.path)) is not None:
            findings.append(f"{info.path}: {why}")
    return verdict(sorted(findings), ok="no credential files", bad="{n} credential file(s)")


@rule(
    "secrets_no_shell_histories",
    area=Area.SECRETS,
    title="No shell or REPL histories",
    severity=Severity.MEDIUM,
    description="No non-empty shell or interpreter history file (.bash_history, .zsh_history, "
    ".python_history, .psql_history, ...).",
    rationale="Histories record the commands typed while an image was prepared, passwords and tokens "
    "given on command lines among them.",
)
def no_shell_histories(ctx: Context, config: RuleConfig) -> Outcome:
    findings = [
        f"{i.path} ({i.size} bytes)"
        for i in ctx.regular_files()
        if i.size > 0 and i.path.rpartition("/")[2] in _HISTORIES and not matches(i.path, config.allow)
    ]
    return verdict(sorted(findings), ok="no history files", bad="{n} history file(s)")
