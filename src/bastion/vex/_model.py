"""VEX documents read: OpenVEX v0.2.0 (validated against its JSON schema, shipped beside this module)
and CycloneDX VEX (``vulnerabilities[].analysis``, validated against the CycloneDX schema of its
``specVersion`` by cyclonedx-python-lib).

An invalid document is refused whole with the schema's error (exit code 2): a VEX document changes
what a scan reports and what ``--exit-code`` decides, so half-reading one is never right. The Node.js
security WG's published document, for instance, repeats one statement, which the schema's
``uniqueItems`` on ``statements`` forbids: Bastion rejects it and says which statements repeat.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from bastion.documents import load_json
from bastion.errors import InputError

__all__ = [
    "OPENVEX_CONTEXT",
    "Product",
    "Statement",
    "VexDocument",
    "VexStatus",
    "load_vex",
    "openvex_schema",
    "parse_cyclonedx_vex",
    "parse_openvex",
    "validate_openvex",
]

OPENVEX_CONTEXT = "https://openvex.dev/ns/v0.2.0"
#: The largest VEX document read (``--vex``): a vendor's whole feed is a few MB.
MAX_VEX_BYTES = 64 * 1024 * 1024


class VexStatus(enum.StrEnum):
    NOT_AFFECTED = "not_affected"
    AFFECTED = "affected"
    FIXED = "fixed"
    UNDER_INVESTIGATION = "under_investigation"


@dataclass(frozen=True)
class Subcomponent:
    id: str | None
    purl: str | None
    hashes: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Product:
    id: str | None
    purl: str | None
    hashes: tuple[tuple[str, str], ...] = ()
    subcomponents: tuple[Subcomponent, ...] = ()


@dataclass(frozen=True)
class Statement:
    vulnerability: str
    aliases: tuple[str, ...]
    products: tuple[Product, ...]
    status: VexStatus
    justification: str | None
    impact_statement: str | None
    action_statement: str | None
    status_notes: str | None
    timestamp: datetime  # the statement's, else the document's (OpenVEX spec, "Inheritance")
    author: str
    document: str
    order: tuple[int, int] = (0, 0)  # (document index, statement index): ties go to the later one

    @property
    def names(self) -> set[str]:
        return {self.vulnerability, *self.aliases}


@dataclass(frozen=True)
class VexDocument:
    id: str
    author: str
    timestamp: datetime
    statements: tuple[Statement, ...] = field(default_factory=tuple)


@cache
def openvex_schema() -> dict[str, Any]:
    """The OpenVEX v0.2.0 JSON schema (openvex/spec, Apache-2.0), shipped as package data."""
    text = resources.files("bastion.vex").joinpath("openvex_json_schema.json").read_text()
    schema: dict[str, Any] = json.loads(text)
    return schema


def _time(value: Any, where: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"timestamp {value!r} is not RFC 3339", where=where) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def validate_openvex(data: Any, where: str) -> None:
    """Raise InputError with the schema's first (best) error."""
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import best_match

    error = best_match(Draft202012Validator(openvex_schema()).iter_errors(data))
    if error is None:
        return
    location = "/".join(str(part) for part in error.absolute_path) or "(document)"
    message = error.message
    if error.validator == "uniqueItems" and isinstance(error.instance, list):
        seen: dict[str, int] = {}
        for index, item in enumerate(error.instance):
            key = json.dumps(item, sort_keys=True)
            if key in seen:
                message = f"items {seen[key]} and {index} are identical (uniqueItems)"
                break
            seen[key] = index
    elif len(message) > 200:
        message = message[:200] + "…"
    raise InputError(f"invalid OpenVEX document: {location}: {message}", where=where)


def _product(item: dict[str, Any]) -> Product:
    identifiers = item.get("identifiers") or {}
    subs = tuple(
        Subcomponent(
            s.get("@id"),
            (s.get("identifiers") or {}).get("purl"),
            tuple(sorted((s.get("hashes") or {}).items())),
        )
        for s in item.get("subcomponents") or []
    )
    return Product(
        item.get("@id"), identifiers.get("purl"), tuple(sorted((item.get("hashes") or {}).items())), subs
    )


def parse_openvex(data: Any, where: str, *, index: int = 0) -> VexDocument:
    validate_openvex(data, where)
    doc_time = _time(data.get("last_updated") or data["timestamp"], where)
    statements = []
    for number, item in enumerate(data["statements"]):
        vulnerability = item["vulnerability"]
        stamp = item.get("last_updated") or item.get("timestamp")
        statements.append(
            Statement(
                vulnerability=vulnerability["name"],
                aliases=tuple(vulnerability.get("aliases") or ()),
                products=tuple(_product(p) for p in item.get("products") or []),
                status=VexStatus(item["status"]),
                justification=item.get("justification"),
                impact_statement=item.get("impact_statement"),
                action_statement=item.get("action_statement"),
                status_notes=item.get("status_notes"),
                timestamp=_time(stamp, where) if stamp else doc_time,
                author=data["author"],
                document=data["@id"],
                order=(index, number),
            )
        )
    return VexDocument(data["@id"], data["author"], doc_time, tuple(statements))


# CycloneDX 1.6 "impactAnalysisState" and "impactAnalysisJustification" -> OpenVEX.
_CDX_STATE = {"not_affected": VexStatus.NOT_AFFECTED, "false_positive": VexStatus.NOT_AFFECTED,
              "resolved": VexStatus.FIXED, "resolved_with_pedigree": VexStatus.FIXED,
              "exploitable": VexStatus.AFFECTED, "in_triage": VexStatus.UNDER_INVESTIGATION}  # fmt: skip
_CDX_JUSTIFICATION = {
    "code_not_present": "vulnerable_code_not_present",
    "code_not_reachable": "vulnerable_code_not_in_execute_path",
    "requires_configuration": "vulnerable_code_cannot_be_controlled_by_adversary",
    "requires_dependency": "component_not_present",
    "requires_environment": "vulnerable_code_cannot_be_controlled_by_adversary",
    "protected_by_compiler": "inline_mitigations_already_exist",
    "protected_at_runtime": "inline_mitigations_already_exist",
    "protected_at_perimeter": "inline_mitigations_already_exist",
    "protected_by_mitigating_control": "inline_mitigations_already_exist",
}


def parse_cyclonedx_vex(data: dict[str, Any], text: str, where: str, *, index: int = 0) -> VexDocument:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    try:
        version = SchemaVersion.from_version(str(data.get("specVersion")))
    except ValueError:
        raise InputError(
            f"unsupported CycloneDX specVersion {data.get('specVersion')!r}", where=where
        ) from None
    errors = JsonStrictValidator(version).validate_str(text)
    if errors is not None:
        raise InputError(f"invalid CycloneDX VEX document: {str(errors)[:300]}", where=where)
    metadata = data.get("metadata") or {}
    doc_time = _time(metadata.get("timestamp") or "1970-01-01T00:00:00Z", where)
    purls = {c.get("bom-ref"): c.get("purl") for c in data.get("components") or [] if c.get("purl")}
    root = metadata.get("component") or {}
    if root.get("purl"):
        purls[root.get("bom-ref")] = root["purl"]
    author = ", ".join(a.get("name", "") for a in metadata.get("authors") or []) or "unknown"
    ident = str(data.get("serialNumber") or where)
    statements = []
    for number, vuln in enumerate(data.get("vulnerabilities") or []):
        analysis = vuln.get("analysis") or {}
        state = _CDX_STATE.get(analysis.get("state", ""))
        if state is None or not vuln.get("id"):
            continue
        products = []
        for affect in vuln.get("affects") or []:
            ref = affect.get("ref", "")
            purl = purls.get(ref) or (ref if ref.startswith("pkg:") else None)
            if purl:
                products.append(Product(purl, purl))
        stamp = analysis.get("lastUpdated") or analysis.get("firstIssued")
        responses = ", ".join(analysis.get("response") or [])
        statements.append(
            Statement(
                vulnerability=vuln["id"],
                aliases=tuple(r["id"] for r in vuln.get("references") or [] if r.get("id")),
                products=tuple(products),
                status=state,
                justification=_CDX_JUSTIFICATION.get(analysis.get("justification", "")),
                impact_statement=analysis.get("detail"),
                action_statement=responses or None,
                status_notes=analysis.get("detail"),
                timestamp=_time(stamp, where) if stamp else doc_time,
                author=author,
                document=ident,
                order=(index, number),
            )
        )
    return VexDocument(ident, author, doc_time, tuple(statements))


def load_vex(path: Path, *, index: int = 0) -> VexDocument:
    """Read an OpenVEX or CycloneDX VEX JSON file (recognised by content)."""
    where = str(path)
    try:
        size = path.stat().st_size
        if size > MAX_VEX_BYTES:
            raise InputError(
                f"the document is {size:,} bytes, more than the {MAX_VEX_BYTES:,} accepted", where=where
            )
        raw = path.read_bytes()
    except OSError as error:
        raise InputError(f"cannot read: {error.strerror}", where=where) from None
    # Bounded (size, depth, values): a document nested thousands deep is refused, not a RecursionError.
    data = load_json(raw, where=where, max_bytes=MAX_VEX_BYTES)
    text = raw.decode("utf-8")  # load_json has refused anything that is not UTF-8
    if isinstance(data, dict) and data.get("bomFormat") == "CycloneDX":
        return parse_cyclonedx_vex(data, text, where, index=index)
    if isinstance(data, dict) and (
        "statements" in data or str(data.get("@context", "")).startswith("https://openvex.dev/")
    ):
        return parse_openvex(data, where, index=index)
    raise InputError("neither an OpenVEX nor a CycloneDX VEX document", where=where)
