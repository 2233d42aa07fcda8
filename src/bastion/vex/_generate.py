"""``bastion vex IMAGE``: an OpenVEX v0.2.0 document for an image, from a scan.

* ``fixed`` — a vulnerability the database names for a package whose shipped version already has
  the fix (tracker ``resolved`` at or below the shipped source version, OSV ``fixed`` event passed);
* ``affected`` with an action statement — a fixed version exists but the image has an older one
  ("update to ..."), or Debian has triaged it without a fix (``no-dsa``, ``postponed``, ``ignored``,
  ``end-of-life``, ``unimportant``: the action says so);
* ``under_investigation`` — open with no fix and no triage yet (tracker ``open``/``undetermined``,
  OSV ranges without a fix);
* ``not_affected`` only where the justification is mechanically true: kernel vulnerabilities
  (Debian source package ``linux``, matched through ``linux-libc-dev`` headers) in an image that
  ships no kernel image are ``component_not_present``; and statements a person wrote
  (:class:`AuthoredStatement`), which replace the generated ones for their vulnerability in the
  packages they name (or in the whole image).

Statements name the image product (its ``pkg:oci`` purl) with the packages as subcomponents (an
``fs://`` scan has no image purl: the packages themselves are the products). The output is validated
against the OpenVEX schema before it is returned.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import bastion
from bastion.errors import InputError, InternalError
from bastion.identifiers import OPENVEX_ID_BASE
from bastion.vex._apply import purl_matches
from bastion.vex._model import OPENVEX_CONTEXT, VexStatus, validate_openvex
from bastion.vuln import Finding, PackageRef, ScanResult, State

if TYPE_CHECKING:
    from bastion.config import Settings
    from bastion.sbom import Sbom

__all__ = ["AuthoredStatement", "VexStatementLike", "generate_vex", "scan_attestations"]

_TRIAGED = {
    State.NO_DSA: "Debian rates this a minor issue and will not issue a security advisory (no-dsa); "
    "no fixed version is available for this release yet",
    State.POSTPONED: "Debian has postponed the fix to a later update of this release",
    State.IGNORED: "Debian will not fix this in this release",
    State.END_OF_LIFE: "the package is no longer supported by Debian security in this release",
    State.UNIMPORTANT: "Debian rates this unimportant (no security impact expected); no fix is planned",
}


@dataclass(frozen=True)
class AuthoredStatement:
    """A statement written by a person (a catalog's VEX entry), kept with its author."""

    vulnerability: str
    status: VexStatus
    author: str
    justification: str | None = None
    impact_statement: str | None = None
    action_statement: str | None = None
    packages: tuple[str, ...] = ()  # purls (patterns) of the packages it is about; empty: the image


class VexStatementLike(Protocol):
    """A statement a person wrote, as :func:`generate_vex` reads it: an :class:`AuthoredStatement`,
    or a definition's ``vex:`` entry (:class:`bastion.catalog.VexStatement`) as it is."""

    @property
    def vulnerability(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def author(self) -> str: ...
    @property
    def justification(self) -> str | None: ...
    @property
    def impact_statement(self) -> str | None: ...
    @property
    def action_statement(self) -> str | None: ...
    @property
    def packages(self) -> Sequence[str]: ...


def _has_kernel(packages: Sequence[PackageRef]) -> bool:
    return any(p.type == "deb" and p.name.startswith("linux-image-") for p in packages)


def _entry(
    vulnerability: str, aliases: Sequence[str], status: str, purls: Sequence[str], product: str | None,
    **fields: str | None,
) -> dict[str, Any]:  # fmt: skip
    statement: dict[str, Any] = {"vulnerability": {"name": vulnerability}}
    if aliases:
        statement["vulnerability"]["aliases"] = sorted(set(aliases))
    subs = sorted(set(purls))
    if product:
        item: dict[str, Any] = {"@id": product, "identifiers": {"purl": product}}
        if subs:
            item["subcomponents"] = [{"@id": purl} for purl in subs]
        statement["products"] = [item]
    else:
        statement["products"] = [{"@id": purl} for purl in subs]
    statement["status"] = str(status)
    statement.update({key: value for key, value in fields.items() if value})
    return statement


def _finding_statement(finding: Finding, kernel: bool, product: str | None, timestamp: str) -> dict[str, Any]:
    purls = [finding.package.purl]
    if finding.package.ecosystem.startswith("Debian:") and finding.package.key == "linux" and not kernel:
        return _entry(
            finding.id, finding.aliases, VexStatus.NOT_AFFECTED, purls, product,
            justification="component_not_present",
            impact_statement="The image ships no Linux kernel: packages of the linux source here hold "
            "headers only, and containers run on the host's kernel.",
        )  # fmt: skip
    if finding.state is State.FIXED and finding.fixed_version:
        return _entry(
            finding.id, finding.aliases, VexStatus.AFFECTED, purls, product,
            action_statement=f"Update {finding.package.name} to {finding.fixed_version} or later "
            f"({finding.package.ecosystem} {finding.package.key}).",
            action_statement_timestamp=timestamp,
        )  # fmt: skip
    if finding.state in _TRIAGED:
        return _entry(
            finding.id, finding.aliases, VexStatus.AFFECTED, purls, product,
            action_statement=f"No update available: {_TRIAGED[finding.state]}.",
            action_statement_timestamp=timestamp,
        )  # fmt: skip
    return _entry(
        finding.id, finding.aliases, VexStatus.UNDER_INVESTIGATION, purls, product,
        status_notes=f"{finding.state.describe} ({finding.package.ecosystem} {finding.package.key})",
    )  # fmt: skip


def generate_vex(
    result: ScanResult,
    *,
    timestamp: str,
    author: str = "Bastion",
    statements: Sequence[VexStatementLike] = (),
) -> dict[str, Any] | None:
    """The OpenVEX document for ``result`` (findings before any VEX was applied), or ``None`` when
    there is nothing to state (the schema wants at least one statement)."""
    product = result.root_purl
    kernel = _has_kernel(result.packages)
    out: list[dict[str, Any]] = []

    def stated(ids: Iterable[str], purl: str) -> bool:
        """Whether a person's statement covers this vulnerability of this package (it then
        replaces what Bastion would say: for the whole image, or for the packages it names)."""
        return any(
            person.vulnerability in ids
            and (not person.packages or any(purl_matches(pattern, purl) for pattern in person.packages))
            for person in statements
        )

    for fixed in result.fixed:
        if stated((fixed.id, *fixed.aliases), fixed.package.purl):
            continue
        notes = f"{fixed.package.name} {fixed.package.version} includes the fix"
        if fixed.fixed_version:
            notes += f" (fixed in {fixed.fixed_version})"
        out.append(
            _entry(
                fixed.id, fixed.aliases, VexStatus.FIXED, [fixed.package.purl], product, status_notes=notes
            )
        )
    for finding in [*result.findings, *result.suppressed]:
        if stated(finding.ids, finding.package.purl):
            continue
        out.append(_finding_statement(finding, kernel, product, timestamp))
    known = [(f.id, *f.aliases) for f in [*result.findings, *result.suppressed]]
    known += [(f.id, *f.aliases) for f in result.fixed]
    for person in statements:
        purls = [
            p.purl
            for p in result.packages
            if any(purl_matches(pattern, p.purl) for pattern in person.packages)
        ]
        if person.packages and not purls:
            continue  # about packages this image does not have
        aliases = {a for ids in known if person.vulnerability in ids for a in ids} - {person.vulnerability}
        out.append(
            _entry(
                person.vulnerability, sorted(aliases), person.status, purls, product,
                justification=person.justification, impact_statement=person.impact_statement,
                action_statement=person.action_statement,
                status_notes=f"Statement by {person.author}",
            )
        )  # fmt: skip
    if not out:
        return None
    out.sort(key=lambda s: (s["vulnerability"]["name"], json.dumps(s, sort_keys=True)))
    unique = [s for i, s in enumerate(out) if i == 0 or s != out[i - 1]]
    body = json.dumps(unique, sort_keys=True).encode()
    document = {
        "@context": OPENVEX_CONTEXT,
        "@id": f"{OPENVEX_ID_BASE}{hashlib.sha256(body + (result.root_purl or result.name).encode()).hexdigest()}",
        "author": author,
        "role": "Document Creator",
        "timestamp": timestamp,
        "version": 1,
        "tooling": f"bastion {bastion.__version__}",
        "statements": unique,
    }
    try:
        validate_openvex(document, "generated VEX")
    except InputError as error:  # our own output failing the schema is a bug, not bad input
        raise InternalError(f"generated OpenVEX document is invalid: {error}") from None
    return document


def scan_attestations(
    reference: str,
    settings: Settings,
    *,
    platform: str | None = None,
    sbom: Sbom | None = None,
    statements: Sequence[VexStatementLike] = (),
) -> tuple[dict[str, Any], dict[str, Any] | None] | None:
    """For ``bastion build``: the CVE-scan predicate (:func:`bastion.vuln.cve_scan_attestation`) and
    the OpenVEX document of the same scan (``None`` when there is nothing to state), with the
    statements the image's definition makes and those of Bastion's repository for its packages in the
    image (:mod:`._repository`); ``None`` when no database is present. Pass ``sbom``
    when the build already has it."""
    from bastion.vex._repository import repository_statements
    from bastion.vuln import cve_scan_attestation

    scanned = cve_scan_attestation(reference, settings, platform=platform, sbom=sbom)
    if scanned is None:
        return None
    predicate, result = scanned
    finished = predicate["metadata"]["scanFinishedOn"]
    # What Bastion's own packages in the image fix (their patches' ``fixes``), then the definition's.
    stated = [*repository_statements(settings), *statements]
    return predicate, generate_vex(result, timestamp=finished, statements=stated)
