"""The ``vex`` field of a definition: statements a person writes about vulnerabilities, their
OpenVEX status rules, their overlays, and that they stay out of the normalised digest."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bastion.catalog import VexJustification, VexStatus, definition_schema, load_definition, normalised_digest
from bastion.errors import DefinitionError

DEFINITION = """\
name: web
vex:
  - vulnerability: CVE-2023-4039
    status: not_affected
    justification: vulnerable_code_not_in_execute_path
    author: Platform security <sec@example.invalid>
    packages: ["pkg:deb/debian/libgcc-s1"]
  - {vulnerability: GHSA-j8r2-6x86-q33q, status: affected, author: me, action-statement: pin requests}
variants:
  runtime: {}
  dev:
    vex:
      - "!GHSA-j8r2-6x86-q33q"
      - {vulnerability: CVE-2023-4039, status: under_investigation, author: dev team}
      - {vulnerability: CVE-2024-0001, status: fixed, author: dev team}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "web.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_statements_and_their_overlays(tmp_path: Path) -> None:
    definition = load_definition(write(tmp_path, DEFINITION))
    runtime = definition.variant("runtime").vex
    assert [(s.vulnerability, s.status) for s in runtime] == [
        ("CVE-2023-4039", VexStatus.NOT_AFFECTED),
        ("GHSA-j8r2-6x86-q33q", VexStatus.AFFECTED),
    ]
    assert runtime[0].justification is VexJustification.VULNERABLE_CODE_NOT_IN_EXECUTE_PATH
    assert runtime[0].packages == ("pkg:deb/debian/libgcc-s1",)
    dev = definition.variant("dev").vex  # replaced in place, removed, appended
    assert [(s.vulnerability, s.status, s.author) for s in dev] == [
        ("CVE-2023-4039", VexStatus.UNDER_INVESTIGATION, "dev team"),
        ("CVE-2024-0001", VexStatus.FIXED, "dev team"),
    ]
    (first, second) = runtime
    assert first.author == "Platform security <sec@example.invalid>"
    assert first.justification == "vulnerable_code_not_in_execute_path"
    assert second.action_statement == "pin requests"


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        (
            "vex:\n  - {vulnerability: CVE-2023-4039, status: not_affected, author: me}\n",
            3,
            "vex[0]: a not_affected statement needs a justification or an impact-statement",
        ),
        (
            "vex:\n  - {vulnerability: CVE-2023-4039, status: affected, author: me}\n",
            3,
            "vex[0]: an affected statement needs an action-statement",
        ),
        (
            "vex:\n  - {vulnerability: CVE-2023-4039, status: fixed, author: me,\n"
            "     justification: component_not_present}\n",
            3,
            "vex[0]: justification and impact-statement are for not_affected, not fixed",
        ),
        (
            "vex:\n  - {vulnerability: CVE-2023-4039, status: fixed}\n",
            3,
            "vex[0].author: required field is missing",
        ),
        (
            "vex:\n  - {vulnerability: CVE-2023-4039, status: fixed, author: '  '}\n",
            3,
            "vex[0].author: author must not be blank",
        ),
        (
            "vex:\n  - {vulnerability: CVE-2023-4039, status: wontfix, author: me}\n",
            3,
            "vex[0].status: Input should be",
        ),
        (
            "vex:\n  - {vulnerability: CVE-2023-4039, status: fixed, author: me, packages: [libssl3]}\n",
            3,
            "vex[0].packages[0]: 'libssl3' is not a valid package URL",
        ),
        (
            "vex:\n  - {vulnerability: CVE-1, status: fixed, author: a}\n"
            "  - {vulnerability: CVE-1, status: fixed, author: b}\n",
            4,
            "vex[1]: duplicate VEX statement 'CVE-1'",
        ),
        (
            "variants:\n  runtime:\n    vex: ['!CVE-2023-4039']\n",
            4,
            "variants.runtime.vex[0]: '!CVE-2023-4039' removes nothing",
        ),
    ],
)
def test_errors_name_file_line_and_field(tmp_path: Path, text: str, line: int, message: str) -> None:
    path = write(tmp_path, "name: web\n" + text)
    with pytest.raises(DefinitionError) as raised:
        load_definition(path)
    assert raised.value.where == f"{path}:{line}"
    assert raised.value.message.startswith(message), raised.value.message


def test_statements_are_not_in_the_digest(tmp_path: Path) -> None:
    """VEX statements change neither what is resolved nor the image: editing them keeps the lock."""
    base = normalised_digest(load_definition(write(tmp_path, DEFINITION)))
    edited = normalised_digest(load_definition(write(tmp_path, DEFINITION.replace("pin requests", "pin it"))))
    plain = DEFINITION.split("vex:", 1)[0] + "variants:\n  runtime: {}\n  dev: {}\n"
    assert base == edited == normalised_digest(load_definition(write(tmp_path, plain)))


def test_the_schema_describes_the_field() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(definition_schema())
    assert list(validator.iter_errors(yaml.safe_load(DEFINITION))) == []
    for bad in (
        {"vulnerability": "CVE-1", "status": "fixed"},
        {"vulnerability": "CVE 1", "status": "fixed", "author": "a"},
        {"vulnerability": "CVE-1", "status": "maybe", "author": "a"},
        {"vulnerability": "CVE-1", "status": "fixed", "author": "a", "extra": 1},
    ):
        assert list(validator.iter_errors({"name": "web", "vex": [bad]})) != [], bad
