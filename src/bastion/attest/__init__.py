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

# Loaded on first use (PEP 562, bastion._lazy): cryptography and PyNaCl, which commands that neither
# sign nor verify should not load (docs/benchmarks.md, import costs).
if TYPE_CHECKING:
    from bastion.attest._bundle import BUNDLE_MEDIA_TYPES, sign_statement, verify_bundle
    from bastion.attest._check import (
        Check,
        ImageReport,
        Opened,
        candidates_for,
        read_unverified,
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
    from bastion.attest._localkey import env_password, local_key, local_key_path
    from bastion.attest._oci import (
        BUNDLE_MEDIA_TYPE,
        AttachedBundle,
        attach_bundle,
        bundle_key_hint,
        bundle_manifest,
        pem_key_hint,
        stored_bundles,
    )
    from bastion.attest._predicates import (
        COMPLIANCE_PREDICATE_TYPE,
        CVE_SCAN_PREDICATE_TYPE,
        CYCLONEDX_PREDICATE_TYPE,
        DEFAULT_REQUIRED,
        OPENVEX_PREDICATE_TYPE,
        PREDICATE_ALIASES,
        PREDICATE_TYPES,
        PROVENANCE_PREDICATE_TYPE,
        SIGNATURE_PREDICATE_TYPE,
        SPDX_PREDICATE_TYPE,
        TEST_REPORT_PREDICATE_TYPE,
        PredicateType,
        predicate_alias,
        resolve_predicate_type,
    )
    from bastion.attest._producers import (
        BUILD_RECORD,
        PROVENANCE_PRODUCER,
        Fact,
        ProducerRegistry,
        ProofContext,
        ProofProducer,
    )
    from bastion.attest._provenance import (
        BuildRecord,
        Dependency,
        dependencies_from,
        provenance,
    )
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

__getattr__ = lazy_attributes(__name__)


__all__ = [
    "BUILD_RECORD",
    "BUNDLE_MEDIA_TYPE",
    "BUNDLE_MEDIA_TYPES",
    "COMPLIANCE_PREDICATE_TYPE",
    "CVE_SCAN_PREDICATE_TYPE",
    "CYCLONEDX_PREDICATE_TYPE",
    "DEFAULT_REQUIRED",
    "OPENVEX_PREDICATE_TYPE",
    "PASSWORD_ENV_VARS",
    "PAYLOAD_TYPE_IN_TOTO",
    "PREDICATE_ALIASES",
    "PREDICATE_TYPES",
    "PROVENANCE_PREDICATE_TYPE",
    "PROVENANCE_PRODUCER",
    "SIGNATURE_PREDICATE_TYPE",
    "SPDX_PREDICATE_TYPE",
    "STATEMENT_TYPE_V1",
    "TEST_REPORT_PREDICATE_TYPE",
    "AttachedBundle",
    "Attestation",
    "AttestationFormat",
    "BuildRecord",
    "Check",
    "Dependency",
    "Envelope",
    "Fact",
    "ImageReport",
    "ImageSource",
    "KeyKind",
    "KeyPairFiles",
    "KeySigner",
    "Opened",
    "PasswordSource",
    "PredicateType",
    "PrivateKey",
    "ProducerRegistry",
    "ProofContext",
    "ProofProducer",
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
    "candidates_for",
    "decrypt_private_key",
    "dependencies_from",
    "encrypt_private_key",
    "env_password",
    "ephemeral_signer",
    "generate_key_pair",
    "key_hint",
    "load_private_key",
    "load_public_key",
    "load_signer",
    "local_key",
    "local_key_path",
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
