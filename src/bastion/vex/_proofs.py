"""The vulnerability proof producers (:class:`bastion.attest.ProofProducer`): the CVE-scan predicate
(cosign's vulnerability attestation) and the OpenVEX document of the same scan, made together from
one :data:`VULN_SCAN` fact with the vulnerability database as it is now.

Both depend on data that is not part of the image: the database (its token,
:data:`bastion.identifiers.ANNOTATION_VULN_DATA`) and, for OpenVEX, the statements the image's
definition makes (:data:`bastion.identifiers.ANNOTATION_VEX_STATEMENTS`). Their ``inputs`` name
both, so one made from other data or statements does not count as attached, and a re-run when only
the vulnerability data changed makes them again without rebuilding the image."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bastion.attest import CVE_SCAN_PREDICATE_TYPE, OPENVEX_PREDICATE_TYPE, Fact, ProofContext, ProofProducer
from bastion.identifiers import ANNOTATION_VEX_STATEMENTS, ANNOTATION_VULN_DATA
from bastion.sbom import SBOM

if TYPE_CHECKING:
    from bastion.vex._generate import VexStatementLike

__all__ = ["CVE_SCAN_PRODUCER", "OPENVEX_PRODUCER", "VEX_STATEMENTS", "VULN_SCAN", "ImageVex"]


@dataclass(frozen=True)
class ImageVex:
    """The statements the image's definition makes (``vex:``) and the caller's digest of them as
    the definition means them (``""`` when there are none), which the OpenVEX attestation records."""

    statements: Sequence[VexStatementLike] = ()
    digest: str = ""


def _no_statements(context: ProofContext) -> ImageVex:
    return ImageVex()


#: The definition's own VEX statements; none unless the caller knows the definition.
VEX_STATEMENTS: Fact[ImageVex] = Fact("VEX statements", default=_no_statements)


def _scan(context: ProofContext) -> tuple[dict[str, Any], dict[str, Any] | None] | None:
    from bastion.vex._generate import scan_attestations

    vex = context.get(VEX_STATEMENTS)
    return scan_attestations(
        context.reference, context.settings, sbom=context.get(SBOM), statements=vex.statements
    )


#: (CVE-scan predicate, OpenVEX document or None) of one scan; None without a database.
VULN_SCAN: Fact[tuple[dict[str, Any], dict[str, Any] | None] | None] = Fact("CVE scan", default=_scan)


def _data(context: ProofContext) -> str | None:
    """The token of the vulnerability data now; None when there is no database."""
    from bastion.vuln import data_version, database_path

    database = database_path(context.settings.home)
    if not database.exists():
        return None
    return data_version(database) or ""


@dataclass(frozen=True)
class _CveScan:
    name: str = "cves"
    predicate_type: str = CVE_SCAN_PREDICATE_TYPE
    needs: tuple[Fact[Any], ...] = ()
    separate_process: bool = False

    def inputs(self, context: ProofContext) -> Mapping[str, str] | None:
        data = _data(context)
        return None if data is None else {ANNOTATION_VULN_DATA: data}

    def produce(self, context: ProofContext) -> dict[str, Any] | None:
        scanned = context.get(VULN_SCAN)
        return None if scanned is None else scanned[0]


@dataclass(frozen=True)
class _OpenVex:
    name: str = "vex"
    predicate_type: str = OPENVEX_PREDICATE_TYPE
    needs: tuple[Fact[Any], ...] = ()
    separate_process: bool = False

    def inputs(self, context: ProofContext) -> Mapping[str, str] | None:
        data = _data(context)
        if data is None:
            return None
        statements = context.get(VEX_STATEMENTS).digest
        return {ANNOTATION_VULN_DATA: data, **({ANNOTATION_VEX_STATEMENTS: statements} if statements else {})}

    def produce(self, context: ProofContext) -> dict[str, Any] | None:
        scanned = context.get(VULN_SCAN)
        return None if scanned is None else scanned[1]  # None: nothing to state (no statement at all)


CVE_SCAN_PRODUCER: ProofProducer = _CveScan()
OPENVEX_PRODUCER: ProofProducer = _OpenVex()
