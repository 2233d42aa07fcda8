"""Package definitions (a Debian source package to rebuild): the catalog's example loads, errors name the
file, line and field, and the checked-in schema is what `bastion schema --package` prints."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.conftest import REPO_ROOT, run_cli

from bastion.catalog import load_package_definition
from bastion.errors import DefinitionError

SCHEMA_FILE = REPO_ROOT / "docs" / "package-schema.json"


def test_the_catalog_example_loads() -> None:
    definition = load_package_definition(REPO_ROOT / "catalog" / "packages" / "zlib" / "zlib.yaml")
    assert (definition.source, definition.revision, definition.fixes) == ("zlib", 1, ("CVE-2099-0001",))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("source: zlib\n", ":1: reason: required field is missing"),
        ("source: Zlib\nreason: r\n", ":1: source: 'Zlib' is not a valid Debian source package name"),
        ("source: zlib\nreason: r\nrevision: 0\n", ":3: revision: Input should be greater than or equal to 1"),
        ("source: zlib\nreason: r\npatches:\n  - {file: /etc/passwd}\n", ":4: patches[0].file: '/etc/passwd' is not"),
        ("source: zlib\nreason: r\npatches:\n  - {file: a.patch}\n  - {file: a.patch}\n",
         ":5: patches[1]: duplicate patch 'a.patch'"),
    ],
)  # fmt: skip
def test_bad_definitions_are_refused_with_file_and_line(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(text)
    with pytest.raises(DefinitionError) as caught:
        load_package_definition(path)
    assert caught.value.diagnostic().startswith(f"{path}{expected}")


def test_the_schema_command_writes_the_checked_in_package_schema(tmp_path: Path) -> None:
    printed = run_cli("schema", "--package", home=tmp_path / "home")
    assert printed.code == 0
    assert printed.stdout == SCHEMA_FILE.read_text(encoding="utf-8"), (
        "docs/package-schema.json is stale: run bastion schema --package -o docs/package-schema.json"
    )
