"""``track:``, ``dates:``, ``from:`` and ``${NAME}`` templating (docs/definitions.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.conftest import REPO_ROOT, run_cli

from bastion.catalog import IncrementTracker, capture, load_definition, normalised_digest, parse_from

TRACKED = """\
name: demo
from: base:runtime
dates: {release: 2023-06-10, end-of-life: 2028-06-30}
track:
  - kind: debian-package
    package: python3.11
    vars:
      VERSION: {value: "3.11.2-6+deb12u6"}
      MINOR: {value: "3.11", capture: '^(\\d+\\.\\d+)'}
  - kind: github-release
    owner: python
    repo: cpython
    match: '^v3\\.11\\.'
    vars: {UPSTREAM: {value: "v3.11.9"}}
  - kind: increment
    on: [VERSION]
    reset-on: MINOR
    vars: {REV: {value: "2"}}
tags: ["${MINOR}-r${REV}"]
labels: {org.example.upstream: "${UPSTREAM}"}
contents:
  packages: ["python3.11=${VERSION}"]
tests:
  - {name: q, command: [/usr/bin/dpkg-query, -W, -f, "${Package}", python3.11]}
variants:
  runtime: {}
  dev:
    tags: ["${MINOR}-dev"]
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "demo.yaml"
    path.write_text(text)
    return path


def test_values_are_substituted_in_templated_fields_only(tmp_path: Path) -> None:
    definition = load_definition(_write(tmp_path, TRACKED))
    assert definition.tags == ("3.11-r2",)
    assert definition.contents.packages == ("python3.11=3.11.2-6+deb12u6",)
    assert definition.labels == {"org.example.upstream": "v3.11.9"}
    assert definition.variant("dev").tags == ("3.11-dev",)
    # An image test's command is not templated: ${Package} is dpkg-query's.
    assert definition.tests[0].command[3] == "${Package}"  # type: ignore[union-attr]
    assert parse_from(definition.from_ or "") == ("base", "runtime")
    assert isinstance(definition.track[2], IncrementTracker)
    assert str(definition.dates.end_of_life) == "2028-06-30"


def test_a_proposal_renders_new_values(tmp_path: Path) -> None:
    path = _write(tmp_path, TRACKED)
    before = load_definition(path)
    after = load_definition(path, variables={"VERSION": "3.11.2-6+deb12u7", "REV": "3"})
    assert after.contents.packages == ("python3.11=3.11.2-6+deb12u7",)
    assert after.tags == ("3.11-r3",)
    assert normalised_digest(before) != normalised_digest(after)


def test_capture_takes_the_first_group_or_the_match() -> None:
    tracked = load_definition_from_text(TRACKED)
    specs = tracked.track[0].vars
    assert capture(specs["MINOR"], "3.12.1-1") == "3.12"
    assert capture(specs["VERSION"], "3.12.1-1") == "3.12.1-1"
    assert capture(specs["MINOR"], "garbage") is None


def load_definition_from_text(text: str) -> object:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        return load_definition(_write(Path(tmp), text))


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            ("${REV}", "${REVX}"),
            "demo.yaml:19: tags[0]: unknown variable ${REVX} (declared: MINOR, REV, UPSTREAM, VERSION)",
        ),
        (('"${MINOR}-dev"', '"${NOPE}-dev"'), "demo.yaml:28: variants.dev.tags[0]: unknown variable ${NOPE}"),
        (("kind: increment", "kind: incremental"), "demo.yaml:15: track[2]: a tracker needs kind:"),
        (
            ("reset-on: MINOR", "reset-on: MAJOR"),
            "track: increment tracker refers to MAJOR, which no tracker sets",
        ),
        (
            ("UPSTREAM: {value", "VERSION: {value"),
            "track[1].vars.VERSION: variable VERSION is already set by track[0]",
        ),
        (
            ("match: '^v3\\.11\\.'", "match: '(unclosed'"),
            "demo.yaml:13: track[1].match: not a valid regular expression",
        ),
        (("end-of-life: 2028-06-30", "end-of-life: 2020-01-01"), "dates: end-of-life is before release"),
        (("from: base:runtime", "from: Base"), "demo.yaml:2: from: 'Base' is not a valid catalog image"),
        (('{value: "2"}', '{value: "two words"}'), "track[2].vars.REV.value: String should match pattern"),
        (
            ("package: python3.11", "package: python3.11\n    colour: blue"),
            "demo.yaml:7: track[0].colour: unknown field",
        ),
        (
            ('"python3.11=${VERSION}"', '"python3.11=${MINOR}x y"'),
            "contents.packages[0]: 'python3.11=3.11x y' is not a valid Debian package name",
        ),
    ],
)
def test_bad_tracking_is_refused_with_file_line_field(
    tmp_path: Path, change: tuple[str, str], expected: str
) -> None:
    assert change[0] in TRACKED
    path = _write(tmp_path, TRACKED.replace(change[0], change[1], 1))
    result = run_cli("lock", str(path), home=tmp_path / "home")
    assert result.code == 2, result.stderr
    assert expected in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


# The catalog's digests as the Bastion before track/dates/from computed them (commit 7f68543).
BEFORE_FACTORY_FIELDS = {
    "base": "sha256:d132eb36f3fba1a20ad35fa5d4c7527d63588dafc4df01d2f376dc4314804e71",
    "nginx": "sha256:7c9804a31052dd03fa9834f6f6c823f786f5dd35331fcd70396bdb1ebcf84f2b",
    "python": "sha256:12d13d62dd651843eccef87191dfb871558df49d8f749ab862717c3083049c50",
    "static": "sha256:79a32a51b61ffa9ba0725b67cffdf09c7e46c8be99ac8f629df81ede97065afd",
}


def test_catalog_digests_are_unchanged_by_the_new_fields() -> None:
    for name, digest in BEFORE_FACTORY_FIELDS.items():
        path = REPO_ROOT / "catalog" / name / f"{name}.yaml"
        assert normalised_digest(load_definition(path)) == digest, name


def test_track_and_dates_are_not_digested(tmp_path: Path) -> None:
    plain = "name: demo\ncontents: {packages: [python3.11]}\n"
    tracked = plain + (
        "dates: {end-of-life: 2030-01-01}\n"
        "track: [{kind: url, url: 'http://127.0.0.1/v', vars: {V: {value: '1'}}}]\n"
    )
    first = normalised_digest(load_definition(_write(tmp_path, plain)))
    assert normalised_digest(load_definition(_write(tmp_path, tracked))) == first
    assert normalised_digest(load_definition(_write(tmp_path, plain + "from: base\n"))) != first


def test_schema_describes_the_factory_fields(tmp_path: Path) -> None:
    result = run_cli("schema", home=tmp_path)
    schema = json.loads(result.stdout)
    assert {"track", "dates", "from"} <= set(schema["properties"])
