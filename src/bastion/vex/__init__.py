"""VEX: OpenVEX v0.2.0 documents read and validated, applied to scans with documented precedence,
generated for images, and exported as CycloneDX VEX.

``openvex_json_schema.json`` beside this module is the OpenVEX v0.2.0 JSON schema from the openvex/spec
repository, Apache License 2.0 (a format definition, shipped unchanged so validation needs no network).
"""

from typing import TYPE_CHECKING

from bastion._lazy import lazy_attributes

# Loaded on first use (PEP 562, bastion._lazy): a build looks up this package's proof producers on
# every run, and a no-op rebuild must not pay for the OpenVEX schema, the matcher and pydantic models.
if TYPE_CHECKING:
    from bastion.vex._apply import DocumentUse, ImageSubject, apply_vex, apply_vex_counted, purl_matches
    from bastion.vex._cyclonedx import to_cyclonedx_vex
    from bastion.vex._generate import AuthoredStatement, VexStatementLike, generate_vex, scan_attestations
    from bastion.vex._model import (
        OPENVEX_CONTEXT,
        Product,
        Statement,
        VexDocument,
        VexStatus,
        load_vex,
        openvex_schema,
        parse_cyclonedx_vex,
        parse_openvex,
        validate_openvex,
    )
    from bastion.vex._proofs import CVE_SCAN_PRODUCER, OPENVEX_PRODUCER, VEX_STATEMENTS, VULN_SCAN, ImageVex
    from bastion.vex._repository import REPOSITORY_VEX_DIR, repository_statements, repository_vex

__getattr__ = lazy_attributes(__name__)


__all__ = [
    "CVE_SCAN_PRODUCER",
    "OPENVEX_CONTEXT",
    "OPENVEX_PRODUCER",
    "REPOSITORY_VEX_DIR",
    "VEX_STATEMENTS",
    "VULN_SCAN",
    "AuthoredStatement",
    "DocumentUse",
    "ImageSubject",
    "ImageVex",
    "Product",
    "Statement",
    "VexDocument",
    "VexStatementLike",
    "VexStatus",
    "apply_vex",
    "apply_vex_counted",
    "generate_vex",
    "load_vex",
    "openvex_schema",
    "parse_cyclonedx_vex",
    "parse_openvex",
    "purl_matches",
    "repository_statements",
    "repository_vex",
    "scan_attestations",
    "to_cyclonedx_vex",
    "validate_openvex",
]
