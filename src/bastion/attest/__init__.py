"""Attestations: cosign-compatible keys, signers, in-toto statements, DSSE and Sigstore bundles.

Typical use::

    signer = load_signer("cosign.key", password=lambda: b"...")
    bundle = sign_statement(make_statement([Subject.for_digest("img", digest)], PREDICATE, body), signer)
    statement = verify_bundle(bundle, Verifier.from_files([Path("cosign.pub")]))

Signature failures raise :class:`bastion.errors.VerificationFailed` (exit code 1); bad keys, wrong
passwords and unsupported key references raise :class:`bastion.errors.InputError` (exit code 2).
"""

from typing import TYPE_CHECKING

from bastion._lazy import lazy_attributes
from bastion.attest._kind import KeyKind

if TYPE_CHECKING:
    from bastion.attest._bundle import BUNDLE_MEDIA_TYPES, sign_statement, verify_bundle
    from bastion.attest._check import (
        DEFAULT_REQUIRED,
        PREDICATE_ALIASES,
        Check,
        ImageReport,
        Opened,
        predicate_alias,
        read_unverified,
        resolve_predicate_type,
        select,
        verify_attestation,
        verify_image,
    )
    from bastion.attest._discover import (
        Attestation,
        AttestationFormat,
        ImageSource,
        RegistryOptions,
        Target,
        open_image,
    )
    from bastion.attest._dsse import (
        PAYLOAD_TYPE_IN_TOTO,
        Envelope,
        Signature,
        pae,
        parse_envelope,
        sign_envelope,
        verify_envelope,
    )
    from bastion.attest._keys import (
        KeyPairFiles,
        PrivateKey,
        PublicKey,
        decrypt_private_key,
        encrypt_private_key,
        generate_key_pair,
        key_hint,
        load_private_key,
        load_public_key,
        parse_public_key,
        public_key_pem,
        write_key_pair,
    )
    from bastion.attest._oci import (
        BUNDLE_MEDIA_TYPE,
        AttachedBundle,
        attach_bundle,
        bundle_key_hint,
        bundle_manifest,
        pem_key_hint,
        stored_bundles,
    )
    from bastion.attest._provenance import PREDICATE_TYPE as PROVENANCE_PREDICATE_TYPE
    from bastion.attest._provenance import BuildRecord, Dependency, provenance
    from bastion.attest._publish import Published, mirror, pull, push
    from bastion.attest._signer import (
        PASSWORD_ENV_VARS,
        KeySigner,
        PasswordSource,
        Signer,
        Verifier,
        ephemeral_signer,
        load_signer,
        password_from_env,
    )
    from bastion.attest._statement import (
        STATEMENT_TYPE_V1,
        Statement,
        Subject,
        make_statement,
        parse_statement,
    )

# Loaded on first use (PEP 562): cryptography and PyNaCl take a tenth of a second to import, which
# commands that neither sign nor verify should not pay.
_LAZY = {
    "Attestation": "_discover",
    "AttestationFormat": "_discover",
    "Check": "_check",
    "DEFAULT_REQUIRED": "_check",
    "ImageReport": "_check",
    "ImageSource": "_discover",
    "Opened": "_check",
    "PREDICATE_ALIASES": "_check",
    "Published": "_publish",
    "RegistryOptions": "_discover",
    "Target": "_discover",
    "mirror": "_publish",
    "open_image": "_discover",
    "predicate_alias": "_check",
    "pull": "_publish",
    "push": "_publish",
    "read_unverified": "_check",
    "resolve_predicate_type": "_check",
    "select": "_check",
    "verify_attestation": "_check",
    "verify_image": "_check",
    "AttachedBundle": "_oci",
    "attach_bundle": "_oci",
    "bundle_manifest": "_oci",
    "stored_bundles": "_oci",
    "bundle_key_hint": "_oci",
    "pem_key_hint": "_oci",
    "BuildRecord": "_provenance",
    "Dependency": "_provenance",
    "PROVENANCE_PREDICATE_TYPE": "_provenance:PREDICATE_TYPE",
    "provenance": "_provenance",
    "BUNDLE_MEDIA_TYPE": "_oci",
    "BUNDLE_MEDIA_TYPES": "_bundle",
    "Envelope": "_dsse",
    "KeyPairFiles": "_keys",
    "KeySigner": "_signer",
    "PASSWORD_ENV_VARS": "_signer",
    "PAYLOAD_TYPE_IN_TOTO": "_dsse",
    "PasswordSource": "_signer",
    "PrivateKey": "_keys",
    "PublicKey": "_keys",
    "STATEMENT_TYPE_V1": "_statement",
    "Signature": "_dsse",
    "Signer": "_signer",
    "Statement": "_statement",
    "Subject": "_statement",
    "Verifier": "_signer",
    "decrypt_private_key": "_keys",
    "encrypt_private_key": "_keys",
    "ephemeral_signer": "_signer",
    "generate_key_pair": "_keys",
    "key_hint": "_keys",
    "load_private_key": "_keys",
    "load_public_key": "_keys",
    "load_signer": "_signer",
    "make_statement": "_statement",
    "pae": "_dsse",
    "parse_envelope": "_dsse",
    "parse_public_key": "_keys",
    "parse_statement": "_statement",
    "password_from_env": "_signer",
    "public_key_pem": "_keys",
    "sign_envelope": "_dsse",
    "sign_statement": "_bundle",
    "verify_bundle": "_bundle",
    "verify_envelope": "_dsse",
    "write_key_pair": "_keys",
}


__getattr__ = lazy_attributes(__name__, _LAZY)


__all__ = [
    "BUNDLE_MEDIA_TYPE",
    "BUNDLE_MEDIA_TYPES",
    "DEFAULT_REQUIRED",
    "PASSWORD_ENV_VARS",
    "PAYLOAD_TYPE_IN_TOTO",
    "PREDICATE_ALIASES",
    "PROVENANCE_PREDICATE_TYPE",
    "STATEMENT_TYPE_V1",
    "AttachedBundle",
    "Attestation",
    "AttestationFormat",
    "BuildRecord",
    "Check",
    "Dependency",
    "Envelope",
    "ImageReport",
    "ImageSource",
    "KeyKind",
    "KeyPairFiles",
    "KeySigner",
    "Opened",
    "PasswordSource",
    "PrivateKey",
    "PublicKey",
    "Published",
    "RegistryOptions",
    "Signature",
    "Signer",
    "Statement",
    "Subject",
    "Target",
    "Verifier",
    "attach_bundle",
    "bundle_key_hint",
    "bundle_manifest",
    "decrypt_private_key",
    "encrypt_private_key",
    "ephemeral_signer",
    "generate_key_pair",
    "key_hint",
    "load_private_key",
    "load_public_key",
    "load_signer",
    "make_statement",
    "mirror",
    "open_image",
    "pae",
    "parse_envelope",
    "parse_public_key",
    "parse_statement",
    "password_from_env",
    "pem_key_hint",
    "predicate_alias",
    "provenance",
    "public_key_pem",
    "pull",
    "push",
    "read_unverified",
    "resolve_predicate_type",
    "select",
    "sign_envelope",
    "sign_statement",
    "stored_bundles",
    "verify_attestation",
    "verify_bundle",
    "verify_envelope",
    "verify_image",
    "write_key_pair",
]
