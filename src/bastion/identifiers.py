"""Bastion's own identifiers, in one place: the names it gives image labels and annotations, and the
URIs it mints (documented, with what each means, in ``docs/identifiers.md``).

Two namespaces, one per kind of name:

* labels and annotations are reverse-DNS keys under :data:`LABEL_NAMESPACE` (OCI image-spec
  ``annotations.md`` "Rules": keys SHOULD be namespaced by reverse domain notation); XCCDF ids take
  the same namespace (``xccdf_dev.bastion_rule_<name>``, XCCDF 1.2 section 6.2.3);
* URIs (predicate and build types, the builder id, document namespaces) start with :data:`URI_BASE`.
  ``.invalid`` is reserved (RFC 2606 section 2, RFC 6761 section 6.4): it never resolves and cannot be
  registered, so nobody else can own these names. They identify, they are not fetched.

Attestations already signed carry these strings, and policies compare them: a name here never changes
once released (a new meaning gets a new name or version).
"""

from __future__ import annotations

#: The reverse-DNS namespace of Bastion's labels, annotations and XCCDF ids.
LABEL_NAMESPACE = "dev.bastion"
#: The base of every URI Bastion mints.
URI_BASE = "https://bastion.invalid/"

# Image config labels (written by the build, read by compliance rules).
LABEL_VARIANT = f"{LABEL_NAMESPACE}.variant"
LABEL_COMPLIANCE = f"{LABEL_NAMESPACE}.compliance"
LABEL_FIPS = f"{LABEL_NAMESPACE}.fips"

# OCI annotations.
#: On a store ``index.json`` entry of an attached artifact: the digest of the manifest it is about.
ANNOTATION_SUBJECT = f"{LABEL_NAMESPACE}.subject"
#: On a per-platform tag of a multi-platform ``oci-dir`` export: the tag of the index it belongs to.
ANNOTATION_PLATFORM_OF = f"{LABEL_NAMESPACE}.platform-of"
#: On an attached OpenVEX document: the SHA-256 of the definition's ``vex:`` statements it was made with.
ANNOTATION_VEX_STATEMENTS = f"{LABEL_NAMESPACE}.vex.statements"
#: On attached CVE-scan and OpenVEX documents: the vulnerability data token they were made with.
ANNOTATION_VULN_DATA = f"{LABEL_NAMESPACE}.vuln.data"
#: On an attached test report: the SHA-256 of the image tests it reports on.
ANNOTATION_TESTS = f"{LABEL_NAMESPACE}.tests"
#: On an attached upstream review: the id of the review-queue record it states (``bastion review show``).
ANNOTATION_REVIEW_ID = f"{LABEL_NAMESPACE}.review.id"

# URIs.
COMPLIANCE_PREDICATE_URI = f"{URI_BASE}attestations/compliance/v1"
#: The upstream diff review (issue 22): versions compared, rules with versions, findings, verdict, reviewer.
REVIEW_PREDICATE_URI = f"{URI_BASE}attestations/upstream-review/v1"
#: Predicate type of the report of an image's tests (``docs/attestations.md``).
TEST_REPORT_PREDICATE_URI = f"{URI_BASE}attestations/test-report/v1"
SLSA_BUILD_TYPE = f"{URI_BASE}slsa/build-types/debian-image/v1"
SLSA_BUILDER_ID = f"{URI_BASE}slsa/builders/local"
#: SLSA ``buildDefinition.buildType`` of a Debian source package rebuilt by ``bastion source build``.
SLSA_SOURCE_BUILD_TYPE = f"{URI_BASE}slsa/build-types/debian-source-package/v1"
#: SPDX ``documentNamespace`` prefix (SPDX 2.3 clause 6.5).
SPDX_NAMESPACE_BASE = f"{URI_BASE}spdx/"
#: The URL namespace CycloneDX ``serialNumber`` UUIDs are derived from (RFC 4122 section 4.3).
CYCLONEDX_SERIAL_BASE = f"{URI_BASE}cyclonedx/"
#: The URL namespace of CycloneDX VEX documents' serial numbers.
CYCLONEDX_VEX_SERIAL_BASE = f"{URI_BASE}cyclonedx-vex/"
#: OpenVEX ``@id`` prefix of generated documents (OpenVEX spec v0.2.0 "Document").
OPENVEX_ID_BASE = f"{URI_BASE}vex/"
#: SARIF ``tool.driver.informationUri`` (SARIF 2.1.0 section 3.19.17).
TOOL_URI = URI_BASE

__all__ = [
    "ANNOTATION_PLATFORM_OF",
    "ANNOTATION_REVIEW_ID",
    "ANNOTATION_SUBJECT",
    "ANNOTATION_TESTS",
    "ANNOTATION_VEX_STATEMENTS",
    "ANNOTATION_VULN_DATA",
    "COMPLIANCE_PREDICATE_URI",
    "CYCLONEDX_SERIAL_BASE",
    "CYCLONEDX_VEX_SERIAL_BASE",
    "LABEL_COMPLIANCE",
    "LABEL_FIPS",
    "LABEL_NAMESPACE",
    "LABEL_VARIANT",
    "OPENVEX_ID_BASE",
    "REVIEW_PREDICATE_URI",
    "SLSA_BUILDER_ID",
    "SLSA_BUILD_TYPE",
    "SLSA_SOURCE_BUILD_TYPE",
    "SPDX_NAMESPACE_BASE",
    "TEST_REPORT_PREDICATE_URI",
    "TOOL_URI",
    "URI_BASE",
]
