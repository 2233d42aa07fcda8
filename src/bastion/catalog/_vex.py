"""VEX statements written by a person in a definition: what the image's maintainers know about a
vulnerability that no scanner can work out (``vex:``).

Each statement becomes an OpenVEX v0.2.0 statement of the image's generated VEX document
(``bastion vex IMAGE --definition FILE``, and the OpenVEX attestation ``bastion build`` signs), with
its author; it takes the place of what Bastion would have said about that vulnerability. The
status rules are the specification's (OpenVEX v0.2.0, "Status Justifications" and "Statement
Fields"): ``not_affected`` needs a justification or an impact statement, ``affected`` an action
statement.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, Discriminator, Field, Tag, model_validator

from bastion.catalog._parts import REMOVAL_TAG, Model, Removal, item_key, removal_tag
from bastion.catalog._types import Matches, unique

__all__ = ["VexItems", "VexJustification", "VexStatement", "VexStatements", "VexStatus"]


class VexStatus(StrEnum):
    """OpenVEX v0.2.0 "Status Labels"."""

    NOT_AFFECTED = "not_affected"
    AFFECTED = "affected"
    FIXED = "fixed"
    UNDER_INVESTIGATION = "under_investigation"


class VexJustification(StrEnum):
    """OpenVEX v0.2.0 "Status Justifications" (for ``not_affected``)."""

    COMPONENT_NOT_PRESENT = "component_not_present"
    VULNERABLE_CODE_NOT_PRESENT = "vulnerable_code_not_present"
    VULNERABLE_CODE_NOT_IN_EXECUTE_PATH = "vulnerable_code_not_in_execute_path"
    VULNERABLE_CODE_CANNOT_BE_CONTROLLED_BY_ADVERSARY = "vulnerable_code_cannot_be_controlled_by_adversary"
    INLINE_MITIGATIONS_ALREADY_EXIST = "inline_mitigations_already_exist"


def _text(what: str) -> Any:
    def check(value: str) -> str:
        if not value.strip():
            raise ValueError(f"{what} must not be blank")
        return value

    return AfterValidator(check)


# CVE-2024-1234, GHSA-xxxx-xxxx-xxxx, PYSEC-2023-1, DSA-5555-1, GO-2024-0001, ...: one token.
VulnerabilityId = Annotated[
    str, Matches(r"^[A-Za-z][A-Za-z0-9]*-[A-Za-z0-9._:-]+$", "vulnerability id", "CVE-2023-4039", 128)
]
# A package URL (purl spec) naming packages of the image; a version or qualifiers narrow it.
PurlPattern = Annotated[str, Matches(r"^pkg:[a-z.+-]+/\S+$", "package URL", "pkg:deb/debian/libgcc-s1", 1024)]
Author = Annotated[
    str, Field(max_length=512, json_schema_extra={"minLength": 1, "pattern": r"\S"}), _text("author")
]
Prose = Annotated[
    str, Field(max_length=4000, json_schema_extra={"minLength": 1, "pattern": r"\S"}), _text("text")
]


class VexStatement(Model):
    """What the image's maintainers state about one vulnerability."""

    vulnerability: VulnerabilityId
    """The vulnerability's id as scanners report it (the CVE, or GHSA/PYSEC/DSA for those without)."""
    status: VexStatus
    author: Author
    """Who makes the statement (a person or team, with a contact): kept in the VEX document."""
    justification: VexJustification | None = None
    """Why the image is not affected (``not_affected`` only)."""
    impact_statement: Prose | None = None
    """Free-text reason the image is not affected (``not_affected`` only)."""
    action_statement: Prose | None = None
    """What users should do (required with ``affected``)."""
    packages: Annotated[tuple[PurlPattern, ...], unique(str, "package")] = ()
    """The packages the statement is about, as package URLs; absent: the whole image. A statement
    about packages the image does not have is left out of its VEX document."""

    @property
    def key(self) -> str:
        return self.vulnerability

    @model_validator(mode="after")
    def _status_fields(self) -> VexStatement:
        # OpenVEX v0.2.0 "Statement Fields": justification/impact_statement are for not_affected,
        # which needs one of them; action_statement is for affected, which needs it.
        if self.status is VexStatus.NOT_AFFECTED:
            if self.justification is None and self.impact_statement is None:
                raise ValueError("a not_affected statement needs a justification or an impact-statement")
        elif self.justification is not None or self.impact_statement is not None:
            raise ValueError(
                f"justification and impact-statement are for not_affected, not {self.status.value}"
            )
        if self.status is VexStatus.AFFECTED and self.action_statement is None:
            raise ValueError("an affected statement needs an action-statement: what should users do?")
        if self.status is not VexStatus.AFFECTED and self.action_statement is not None:
            raise ValueError(f"action-statement is for affected, not {self.status.value}")
        return self


VexStatements = Annotated[tuple[VexStatement, ...], unique(item_key, "VEX statement")]
#: In an overlay: a statement replaces the inherited one about the same vulnerability, and
#: ``"!CVE-..."`` removes the inherited one.
VexItems = Annotated[
    tuple[
        Annotated[
            Annotated[VexStatement, Tag("~item")] | Annotated[Removal, Tag(REMOVAL_TAG)],
            Discriminator(removal_tag),
        ],
        ...,
    ],
    unique(item_key, "VEX statement"),
]
