"""Cryptography rules: the trust anchors TLS clients use, and FIPS configuration where it is claimed.

CCI-000185 (IA-5 (2) (a), validate certificates to a trust anchor) as RHEL-08-010090 uses it;
CCI-000068 (AC-17 (2), FIPS-validated cryptography) as RHEL-08-010020 uses it.
"""

from __future__ import annotations

import re
import warnings

from cryptography import x509
from cryptography.utils import CryptographyDeprecationWarning

from bastion.compliance._model import Area, Outcome, Result, RuleConfig, Severity
from bastion.compliance._rules._context import Context
from bastion.compliance._rules._registry import not_applicable, passed, rule
from bastion.identifiers import LABEL_FIPS
from bastion.image import FileKind

DEFAULT_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
_TLS_LIBRARY = re.compile(r"lib(?:ssl|gnutls|nss3|mbedtls|wolfssl)\.so(?:\.[0-9.]+)?")
_FIPS_LABEL = LABEL_FIPS
_YES = ("yes", "true", "1", "on")
_OPENSSL_CONF = "/etc/ssl/openssl.cnf"
# OpenSSL_version(3) OPENSSL_DIR: the string libcrypto carries, 'OPENSSLDIR: "<dir>"'.
_OPENSSLDIR = re.compile(rb'OPENSSLDIR: "(/[^"\x00\n]{0,4095})"')
_LIBCRYPTO = re.compile(r"libcrypto\.so(?:\.[0-9.]+)?")
_DEBIAN_OPENSSLDIR = "/usr/lib/ssl"  # Debian's libssl3: --openssldir=/usr/lib/ssl
# Debian's gnutls28 is configured --with-default-trust-store-file=/etc/ssl/certs/ca-certificates.crt.
_GNUTLS_TRUST_FILE = DEFAULT_CA_BUNDLE
# X509_LOOKUP_hash_dir(3): a CA directory is searched by subject hash, "<8 hex digits>.<n>".
_HASHED = re.compile(r"[0-9a-f]{8}\.[0-9]+")
_MAX_LIBCRYPTO = 32 * 1024 * 1024  # Debian's is under 5 MiB


def _tls_libraries(ctx: Context) -> list[str]:
    return sorted(p for p in ctx.files if _TLS_LIBRARY.fullmatch(p.rpartition("/")[2]))


def _bundle(ctx: Context, path: str) -> tuple[int, str]:
    """How many certificates the CA bundle at ``path`` holds, and what is wrong with it (or "")."""
    data = ctx.read(path)
    if data is None:
        return 0, f"no CA bundle at {path}"
    try:
        with warnings.catch_warnings():
            # Debian's bundle has a root with a non-positive serial (RFC 5280 4.1.2.2 wants one);
            # cryptography still parses it and warns: the bundle is usable, so this is no finding.
            warnings.simplefilter("ignore", CryptographyDeprecationWarning)
            certificates = x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        return 0, f"{path} does not parse: {exc}"
    return len(certificates), "" if certificates else f"{path} holds no certificate"


def _openssl_dirs(ctx: Context) -> list[str]:
    """OPENSSLDIR as each libcrypto of the image was built with; Debian's when none says."""
    found = set()
    for path in sorted(p for p in ctx.files if _LIBCRYPTO.fullmatch(p.rpartition("/")[2])):
        data = ctx.read(path, limit=_MAX_LIBCRYPTO)
        if data is not None and (match := _OPENSSLDIR.search(data)):
            found.add(match.group(1).decode("utf-8", "replace").rstrip("/") or "/")
    return sorted(found) or [_DEBIAN_OPENSSLDIR]


def _hashed_certificates(ctx: Context, directory: str) -> int:
    """How many subject-hash names in ``directory`` lead to a file (what OpenSSL's CA path finds)."""
    info = ctx.resolve(directory)
    if info is None or info.kind is not FileKind.DIRECTORY:
        return 0
    prefix = info.path.rstrip("/") + "/"
    names = [p for p in ctx.files if p.startswith(prefix) and _HASHED.fullmatch(p[len(prefix) :])]
    return sum(1 for p in names if ctx.read(p, limit=1) is not None)


@rule(
    "crypto_ca_bundle",
    area=Area.CRYPTO,
    title="TLS libraries find parsable trust anchors by default",
    severity=Severity.MEDIUM,
    description="When the image has a TLS library, each finds trust anchors where it looks without "
    "any environment: OpenSSL in OPENSSLDIR (read from the image's libcrypto, else Debian's "
    "/usr/lib/ssl): cert.pem, or subject-hash names in certs/; GnuTLS, NSS, mbed TLS and wolfSSL in "
    "/etc/ssl/certs/ca-certificates.crt (Debian's GnuTLS default trust store). Every CA bundle read, "
    "SSL_CERT_FILE's too when the image sets it, holds only parsable X.509 certificates.",
    rationale="Without trust anchors TLS clients either fail or get configured to skip verification, "
    "and a corrupt bundle fails in the same ways at run time. A container does not always get the "
    "image's environment (env -i, an orchestrator that sets its own, a subprocess given an empty "
    "one), so SSL_CERT_FILE alone is not enough.",
    cci=("CCI-000185",),
)
def ca_bundle(ctx: Context, config: RuleConfig) -> Outcome:
    libraries = _tls_libraries(ctx)
    if not libraries:
        return not_applicable("no TLS library in the image")
    findings: list[str] = []
    found: list[str] = []
    env_file = dict(ctx.env).get("SSL_CERT_FILE")
    if env_file:
        count, problem = _bundle(ctx, env_file)
        findings += [f"SSL_CERT_FILE: {problem}"] if problem else []
    names = {path.rpartition("/")[2].partition(".so")[0] for path in libraries}
    if "libssl" in names:
        for directory in _openssl_dirs(ctx):
            cafile, capath = f"{directory}/cert.pem", f"{directory}/certs"
            count, problem = _bundle(ctx, cafile)
            if not problem:
                found.append(f"OpenSSL: {count} in {cafile}")
            elif ctx.exists(cafile):  # OpenSSL fails to load a default CA file that does not parse
                findings.append(f"OpenSSL (OPENSSLDIR {directory}): {problem}")
            elif hashed := _hashed_certificates(ctx, capath):
                found.append(f"OpenSSL: {hashed} in {capath}")
            else:
                findings.append(
                    f"OpenSSL (OPENSSLDIR {directory}) finds no trust anchor without SSL_CERT_FILE: "
                    f"no {cafile} and no subject-hash certificates in {capath}"
                )
    if names - {"libssl"}:
        count, problem = _bundle(ctx, _GNUTLS_TRUST_FILE)
        if problem:
            findings.append(f"{', '.join(sorted(names - {'libssl'}))}: {problem}")
        else:
            found.append(f"{count} in {_GNUTLS_TRUST_FILE}")
    if findings:
        return Outcome(
            Result.FAIL,
            f"{len(findings)} TLS trust anchor problem(s): {findings[0]}",
            (*findings, *libraries),
        )
    return passed(f"{'; '.join(found)} (for {', '.join(libraries)})")


def _claims_fips(ctx: Context) -> bool:
    return ctx.labels.get(_FIPS_LABEL, "").lower() in _YES or "fips" in (ctx.variant or "").lower()


@rule(
    "crypto_fips_provider",
    area=Area.CRYPTO,
    title="FIPS provider configured where the image claims FIPS",
    severity=Severity.HIGH,
    description="An image labelled dev.bastion.fips=true (or a fips variant) has OpenSSL's FIPS "
    "provider module (ossl-modules/fips.so), its module configuration included from openssl.cnf "
    "(OPENSSL_CONF, else /etc/ssl/openssl.cnf), and fips=yes as the default property.",
    rationale="A FIPS claim is only true when the validated provider is installed and configured as "
    "the default: otherwise OpenSSL silently uses its non-validated default provider.",
    cci=("CCI-000068",),
)
def fips_provider(ctx: Context, config: RuleConfig) -> Outcome:
    if not _claims_fips(ctx):
        return not_applicable(f"the image does not claim FIPS (no {_FIPS_LABEL} label, not a fips variant)")
    findings = []
    if not any(p.endswith("/ossl-modules/fips.so") for p in ctx.files):
        findings.append("no ossl-modules/fips.so (OpenSSL FIPS provider module)")
    conf_path = dict(ctx.env).get("OPENSSL_CONF") or _OPENSSL_CONF
    conf = ctx.text(conf_path)
    if conf is None:
        findings.append(f"no OpenSSL configuration at {conf_path}")
    else:
        # OpenSSL 3 fips_config(5): the module configuration is included and the provider activated;
        # config(5) "default_properties = fips=yes" makes every fetch pick the FIPS provider.
        texts = [conf]
        for include in re.findall(r"(?m)^\s*\.include\s*=?\s*(\S+)", conf):
            texts.append(ctx.text(include) or "")
        joined = "\n".join(texts)
        if not re.search(r"(?m)^\s*fips\s*=\s*\S+", joined):
            findings.append(f"{conf_path}: no 'fips = <section>' provider entry")
        if not re.search(r"(?m)^\s*module-mac\s*=", joined):
            findings.append(f"{conf_path}: the FIPS module configuration (module-mac) is not included")
        if not re.search(r"(?m)^\s*default_properties\s*=\s*.*fips\s*=\s*yes", joined):
            findings.append(f"{conf_path}: default_properties does not set fips=yes")
    if findings:
        return Outcome(
            Result.FAIL, f"the image claims FIPS but {len(findings)} requirement(s) fail", tuple(findings)
        )
    return passed("FIPS provider installed, configured and the default")
