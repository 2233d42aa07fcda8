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

DEFAULT_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
_TLS_LIBRARY = re.compile(r"lib(?:ssl|gnutls|nss3|mbedtls|wolfssl)\.so(?:\.[0-9.]+)?")
_FIPS_LABEL = "dev.bastion.fips"
_YES = ("yes", "true", "1", "on")
_OPENSSL_CONF = "/etc/ssl/openssl.cnf"


def _tls_libraries(ctx: Context) -> list[str]:
    return sorted(p for p in ctx.files if _TLS_LIBRARY.fullmatch(p.rpartition("/")[2]))


@rule(
    "crypto_ca_bundle",
    area=Area.CRYPTO,
    title="A parsable CA bundle is present where TLS libraries are",
    severity=Severity.MEDIUM,
    description="When the image has a TLS library (OpenSSL, GnuTLS, NSS, mbed TLS, wolfSSL), the CA "
    "bundle (SSL_CERT_FILE, else /etc/ssl/certs/ca-certificates.crt) exists and holds only "
    "parsable X.509 certificates.",
    rationale="Without trust anchors TLS clients either fail or get configured to skip verification, "
    "and a corrupt bundle fails in the same ways at run time.",
    cci=("CCI-000185",),
)
def ca_bundle(ctx: Context, config: RuleConfig) -> Outcome:
    libraries = _tls_libraries(ctx)
    if not libraries:
        return not_applicable("no TLS library in the image")
    path = dict(ctx.env).get("SSL_CERT_FILE") or DEFAULT_CA_BUNDLE
    data = ctx.read(path)
    if data is None:
        return Outcome(Result.FAIL, f"no CA bundle at {path}", (path, *libraries))
    try:
        with warnings.catch_warnings():
            # Debian's bundle has a root with a non-positive serial (RFC 5280 4.1.2.2 wants one);
            # cryptography still parses it and warns: the bundle is usable, so this is no finding.
            warnings.simplefilter("ignore", CryptographyDeprecationWarning)
            certificates = x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        return Outcome(Result.FAIL, f"{path} does not parse: {exc}", (path,))
    return passed(f"{path}: {len(certificates)} certificates for {', '.join(libraries)}")


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
