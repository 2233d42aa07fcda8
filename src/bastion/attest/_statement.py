"""in-toto Statement v1 (in-toto/attestation ``spec/v1/statement.md``), built and parsed with validation."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError, field_validator

from bastion.errors import InputError

STATEMENT_TYPE_V1: Final = "https://in-toto.io/Statement/v1"

# digest_set.md: the standard algorithms use lowercase hex; these are the lengths we can check.
_HEX_LENGTHS = {"sha1": 40, "sha224": 56, "sha256": 64, "sha384": 96, "sha512": 128, "sha512_256": 64}
_HEX_ALGORITHMS = frozenset(
    {*_HEX_LENGTHS, "sha512_224", "sha3_224", "sha3_256", "sha3_384", "sha3_512", "md5", "gitCommit", "gitTree",
     "gitBlob", "gitTag", "dirHash1"}
)  # fmt: skip
_LOWER_HEX = re.compile(r"[0-9a-f]+")


class Subject(BaseModel):
    """A ResourceDescriptor naming one artifact (``resource_descriptor.md``); other descriptor fields
    (``uri``, ``annotations`` ...) are kept as they are."""

    model_config = ConfigDict(frozen=True, extra="allow")

    name: str | None = None
    digest: dict[str, str] = Field(min_length=1)

    @field_validator("digest")
    @classmethod
    def _digest_values(cls, digest: dict[str, str]) -> dict[str, str]:
        for algorithm, value in digest.items():
            if algorithm in _HEX_ALGORITHMS and not _LOWER_HEX.fullmatch(value):
                raise ValueError(f"{algorithm} digest must be lowercase hex")
            expected = _HEX_LENGTHS.get(algorithm)
            if expected and len(value) != expected:
                raise ValueError(f"{algorithm} digest must be {expected} hex digits, not {len(value)}")
        return digest

    @classmethod
    def for_digest(cls, name: str, digest: str) -> Subject:
        """A subject from an OCI-style digest (``sha256:<hex>``)."""
        algorithm, sep, value = digest.partition(":")
        if not sep:
            raise InputError(f"digest {digest!r} is not of the form algorithm:hex")
        return cls(name=name, digest={algorithm: value})


class Statement(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    # statement.md: `_type` is always https://in-toto.io/Statement/v1 for this version.
    statement_type: Literal["https://in-toto.io/Statement/v1"] = Field(alias="_type")
    # statement.md: subject is required and each element MUST have `digest` set.
    subject: tuple[Subject, ...] = Field(min_length=1)
    predicate_type: str = Field(alias="predicateType", min_length=1)
    # statement.md: predicate is optional; unset is treated the same as set-but-empty.
    predicate: dict[str, JsonValue] | None = None

    def to_json(self) -> bytes:
        """Compact JSON in a fixed field order: the DSSE payload."""
        doc = self.model_dump(mode="json", by_alias=True, exclude_none=True)
        return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def make_statement(
    subjects: Iterable[Subject], predicate_type: str, predicate: dict[str, JsonValue] | None = None
) -> Statement:
    try:
        return Statement.model_validate(
            {
                "_type": STATEMENT_TYPE_V1,
                "subject": tuple(subjects),
                "predicateType": predicate_type,
                "predicate": predicate,
            }
        )
    except ValidationError as exc:
        raise InputError(f"invalid in-toto statement: {_first_error(exc)}") from None


def parse_statement(data: bytes, *, where: str = "statement") -> Statement:
    try:
        return Statement.model_validate_json(data)
    except ValidationError as exc:
        raise InputError(f"not an in-toto Statement v1: {_first_error(exc)}", where=where) from None


def _first_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    field = ".".join(str(part) for part in first["loc"])
    return f"{field}: {first['msg']}" if field else str(first["msg"])
