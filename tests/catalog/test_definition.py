"""The definition format: loading, variants, errors with file:line:field, digest, schema."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from tests.conftest import run_cli

from bastion.catalog import (
    AbsentTest,
    CommandTest,
    DirectoryEntry,
    FileEntry,
    FileTest,
    SymlinkEntry,
    VariantKind,
    definition_schema,
    load_definition,
    normalised_digest,
)
from bastion.catalog._schema import render_schema
from bastion.errors import DefinitionError, InputError

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "docs" / "definition-schema.json"

FULL = """\
# The Python image.
name: python
image: bastion/python
tags: ["3.11", "3.11-bookworm"]
platforms: [linux/amd64, linux/arm64]
contents:
  repositories:
    - uri: http://mirror.example/debian
      suites: [bookworm, bookworm-updates]
      components: [main]
  keyring: /usr/share/keyrings/debian-archive-keyring.gpg
  allow-expired: false
  packages: [python3.11, "!mawk"]
accounts:
  users: [{name: nonroot, uid: 65532, gid: 65532, home: /home/nonroot, shell: /usr/sbin/nologin}]
  groups: [{name: nonroot, gid: 65532}]
  run-as: "65532"
entrypoint: ["/usr/bin/python3.11"]
cmd: []
work-dir: /home/nonroot
environment: {LANG: C.UTF-8}
paths:
  - {type: directory, path: /app, mode: "0755", uid: 65532, gid: 65532}
  - {type: file, path: /etc/app.conf, mode: "0644", content: "debug = false\\n"}
  - {type: symlink, path: /usr/bin/python, target: python3.11}
labels: {org.opencontainers.image.title: python}
annotations: {}
ports: ["8080/tcp"]
stop-signal: SIGQUIT
source-date-epoch: null
compliance: []
tests:
  - {name: passwd, file: /etc/passwd, contains: "nonroot:x:65532"}
  - {name: no-shell, absent: /bin/sh}
  - {name: ssl, command: ["/usr/bin/python3.11", "-c", "import ssl"], exit-code: 0, stdout-contains: ""}
variants:
  runtime: {}
  dev:
    contents: {packages: [bash, coreutils, apt, dpkg]}
    accounts: {run-as: root}
    tests:
      - "!no-shell"
      - {name: shell, file: /bin/bash, mode: "755"}
"""


def write(tmp_path: Path, text: str, name: str = "python.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def line_of(text: str, marker: str, occurrence: int = 1) -> int:
    """1-based line of the ``occurrence``-th line containing ``marker``."""
    hits = [number for number, line in enumerate(text.splitlines(), 1) if marker in line]
    return hits[occurrence - 1]


# --- loading ----------------------------------------------------------------------------------------


def test_full_definition_loads(tmp_path: Path) -> None:
    path = write(tmp_path, FULL)
    definition = load_definition(path)

    assert definition.path == path
    assert definition.name == "python"
    assert definition.image == "bastion/python"
    assert definition.tags == ("3.11", "3.11-bookworm")
    assert definition.platforms == ("linux/amd64", "linux/arm64")
    assert definition.contents.repositories is not None
    assert definition.contents.repositories[0].suites == ("bookworm", "bookworm-updates")
    assert definition.contents.packages == ("python3.11", "!mawk")
    assert definition.contents.include == ("python3.11",)
    assert definition.contents.exclude == ("mawk",)
    assert definition.accounts.users[0].uid == 65532
    assert definition.accounts.run_as == "65532"
    assert definition.work_dir == "/home/nonroot"
    assert definition.environment == {"LANG": "C.UTF-8"}
    assert [type(entry) for entry in definition.paths] == [DirectoryEntry, FileEntry, SymlinkEntry]
    assert [type(test) for test in definition.tests] == [FileTest, AbsentTest, CommandTest]
    assert definition.ports == ("8080/tcp",)
    assert definition.stop_signal == "SIGQUIT"
    assert definition.variant_names() == ["runtime", "dev"]


def test_defaults(tmp_path: Path) -> None:
    definition = load_definition(write(tmp_path, "name: hello\n"))
    assert definition.variant_names() == ["runtime"]
    runtime = definition.variant("runtime")
    assert runtime.kind is VariantKind.RUNTIME
    assert runtime.image == "bastion/hello"
    assert runtime.tags == ("latest",)
    assert runtime.platforms == ("linux/amd64",)
    assert runtime.accounts.run_as == "65532"
    assert runtime.contents.repositories is None
    assert runtime.contents.keyring == "/usr/share/keyrings/debian-archive-keyring.gpg"
    assert runtime.contents.allow_expired is False


def test_values_are_normalised(tmp_path: Path) -> None:
    text = (
        "name: n\nplatforms: [linux/armhf, linux/i386]\nports: [8080, 53/udp]\nstop-signal: TERM\n"
        "accounts: {run-as: 1000}\npaths: [{type: directory, path: /d, mode: '755'}]\n"
    )
    definition = load_definition(write(tmp_path, text))
    assert definition.platforms == ("linux/arm/v7", "linux/386")
    assert definition.ports == ("8080/tcp", "53/udp")
    assert definition.stop_signal == "SIGTERM"
    assert definition.accounts.run_as == "1000"
    assert definition.paths[0] == DirectoryEntry(type="directory", path="/d", mode="0755")


def test_the_model_is_frozen(tmp_path: Path) -> None:
    definition = load_definition(write(tmp_path, FULL))
    with pytest.raises(ValueError, match="frozen"):
        definition.name = "other"


def test_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        load_definition(tmp_path / "absent.yaml")
    assert not isinstance(caught.value, DefinitionError)
    assert "absent.yaml" in caught.value.diagnostic()


# --- variants ---------------------------------------------------------------------------------------


def test_dev_is_runtime_plus_its_overlay(tmp_path: Path) -> None:
    definition = load_definition(write(tmp_path, FULL))
    runtime, dev = definition.variant("runtime"), definition.variant("dev")

    assert (runtime.kind, dev.kind) == (VariantKind.RUNTIME, VariantKind.DEV)
    assert runtime.tags == ("3.11", "3.11-bookworm")
    assert dev.tags == ("3.11-dev", "3.11-bookworm-dev")
    assert dev.contents.packages == (*runtime.contents.packages, "bash", "coreutils", "apt", "dpkg")
    assert (runtime.accounts.run_as, dev.accounts.run_as) == ("65532", "root")
    assert [test.name for test in dev.tests] == ["passwd", "ssl", "shell"]
    assert dev.tests[-1] == FileTest(name="shell", file="/bin/bash", mode="0755")
    # Everything the overlay does not touch is the runtime variant's.
    changed = {"name", "kind", "tags", "contents", "accounts", "tests"}
    assert dev.model_dump(exclude=changed) == runtime.model_dump(exclude=changed)
    assert dev.contents.repositories == runtime.contents.repositories
    assert dev.accounts.users == runtime.accounts.users


def test_merge_rules(tmp_path: Path) -> None:
    text = """\
name: app
tags: [v1]
contents: {packages: [a1, b1, "!c1"]}
accounts: {users: [{name: app, uid: 1000, gid: 1000}]}
environment: {A: "1", B: "2"}
labels: {team: x}
entrypoint: [/app, --serve]
paths:
  - {type: directory, path: /data}
  - {type: file, path: /etc/app.conf, content: old}
tests:
  - {name: t1, absent: /bin/sh}
variants:
  debug:
    contents: {packages: ["!a1", c1, d1]}
    accounts: {users: [{name: app, uid: 1001, gid: 1001}, {name: extra, uid: 2000, gid: 2000}]}
    environment: {A: null, C: "3"}
    labels: {tier: debug}
    entrypoint: [/app]
    paths:
      - "!/data"
      - {type: file, path: /etc/app.conf, content: new}
    tests: [{name: t1, file: /bin/sh}]
  tools:
    kind: dev
    tags: [tools]
"""
    definition = load_definition(write(tmp_path, text))
    debug, tools = definition.variant("debug"), definition.variant("tools")

    assert debug.kind is VariantKind.RUNTIME  # a name other than runtime/dev
    assert tools.kind is VariantKind.DEV
    assert (debug.tags, tools.tags) == (("v1-debug",), ("tools",))
    assert debug.contents.packages == ("b1", "!a1", "c1", "d1")
    assert [(user.name, user.uid) for user in debug.accounts.users] == [("app", 1001), ("extra", 2000)]
    assert debug.environment == {"B": "2", "C": "3"}
    assert debug.labels == {"team": "x", "tier": "debug"}
    assert debug.entrypoint == ("/app",)
    assert debug.paths == (FileEntry(type="file", path="/etc/app.conf", content="new"),)
    assert debug.tests == (FileTest(name="t1", file="/bin/sh"),)
    # An overlay without changes is the top level.
    for field in ("contents", "accounts", "environment", "labels", "entrypoint", "paths", "tests"):
        assert getattr(tools, field) == getattr(definition, field)


def test_unknown_variant_is_an_input_error(tmp_path: Path) -> None:
    definition = load_definition(write(tmp_path, FULL))
    with pytest.raises(InputError, match="no variant 'debug'"):
        definition.variant("debug")


# --- errors name the file, the line and the field ---------------------------------------------------

ERRORS = [
    # (id, replace this, with this, marker on the bad line, field path, text in the message)
    (
        "test-platform-unknown",
        "{name: no-shell, absent: /bin/sh}",
        "{name: no-shell, absent: /bin/sh, platforms: [linux/sparc64]}",
        "no-shell, absent",
        "tests[1].platforms[0]",
        "not a Debian architecture",
    ),
    (
        "test-platforms-empty",
        "{name: no-shell, absent: /bin/sh}",
        "{name: no-shell, absent: /bin/sh, platforms: []}",
        "no-shell, absent",
        "tests[1].platforms",
        "empty",
    ),
    ("unknown-field", "work-dir:", "work_dir:", "work_dir:", "work_dir", "unknown field"),
    (
        "wrong-type",
        "  allow-expired: false",
        "  allow-expired: [no]",
        "allow-expired",
        "contents.allow-expired",
        "valid boolean",
    ),
    (
        "number-for-string",
        'tags: ["3.11", "3.11-bookworm"]',
        'tags: ["3.11", 3.10]',
        "tags:",
        "tags[1]",
        "quote it",
    ),
    (
        "bad-platform",
        "platforms: [linux/amd64, linux/arm64]",
        "platforms:\n  - linux/amd64\n  - linux/sparc",
        "linux/sparc",
        "platforms[1]",
        "not a Debian architecture",
    ),
    ("bad-port", 'ports: ["8080/tcp"]', 'ports: ["70000/tcp"]', "ports:", "ports[0]", "not a port"),
    (
        "bad-package",
        '  packages: [python3.11, "!mawk"]',
        "  packages:\n    - python3.11\n    - Python_3",
        "Python_3",
        "contents.packages[1]",
        "not a valid Debian package name",
    ),
    (
        "duplicate-package",
        '  packages: [python3.11, "!mawk"]',
        "  packages:\n    - python3.11\n    - mawk\n    - python3.11  # again",
        "# again",
        "contents.packages[2]",
        "duplicate package 'python3.11'",
    ),
    (
        "duplicate-key",
        "cmd: []",
        "cmd: []\nwork-dir: /srv",
        "work-dir: /home",
        "work-dir",
        "(first at line 20)",
    ),
    (
        "nested-duplicate-key",
        "  allow-expired: false",
        "  allow-expired: false\n  allow-expired: true",
        "allow-expired: true",
        "contents.allow-expired",
        "duplicate key",
    ),
    (
        "missing-field",
        "    - uri: http://mirror.example/debian\n      suites: [bookworm, bookworm-updates]\n",
        "    - uri: http://mirror.example/debian\n",
        "- uri:",
        "contents.repositories[0].suites",
        "required field is missing",
    ),
    (
        "test-kind",
        "{name: no-shell, absent: /bin/sh}",
        "{name: no-shell, absent: /bin/sh, file: /bin/sh}",
        "name: no-shell",
        "tests[1]",
        "exactly one of",
    ),
    (
        "test-field",
        'exit-code: 0, stdout-contains: ""',
        'exit-code: 0, stdout: ""',
        "name: ssl",
        "tests[2].stdout",
        "unknown field",
    ),
    ("mode-as-number", 'mode: "0644"', "mode: 0644", "/etc/app.conf", "paths[1].mode", "quoted octal"),
    ("relative-path", "path: /app,", "path: app,", "path: app", "paths[0].path", "not an absolute path"),
    ("variant-name", "  dev:\n", "  Dev:\n", "Dev:", "variants.Dev", "not a valid variant name"),
    (
        "overlay-field",
        "accounts: {run-as: root}",
        "accounts: {run-as: root, shell: /bin/sh}",
        "run-as: root",
        "variants.dev.accounts.shell",
        "unknown field",
    ),
    (
        "overlay-removes-nothing",
        '"!no-shell"',
        '"!no-shel"',
        "!no-shel",
        "variants.dev.tests[0]",
        "removes nothing",
    ),
    (
        "overlay-bad-package",
        "packages: [bash, coreutils",
        "packages: [bash, Coreutils",
        "packages: [bash",
        "variants.dev.contents.packages[1]",
        "not a valid Debian package name",
    ),
]


@pytest.mark.parametrize(
    ("old", "new", "marker", "field", "message"),
    [case[1:] for case in ERRORS],
    ids=[case[0] for case in ERRORS],
)
def test_errors_name_file_line_and_field(
    tmp_path: Path, old: str, new: str, marker: str, field: str, message: str
) -> None:
    assert old in FULL
    text = FULL.replace(old, new, 1)
    path = write(tmp_path, text)
    with pytest.raises(DefinitionError) as caught:
        load_definition(path)
    diagnostic = caught.value.diagnostic()
    assert diagnostic.startswith(f"{path}:{line_of(text, marker)}: {field}: "), diagnostic
    assert message in diagnostic


def test_yaml_syntax_error_names_line_and_column(tmp_path: Path) -> None:
    text = FULL.replace("work-dir: /home/nonroot", "work-dir: /home/nonroot\n  bad: indentation")
    path = write(tmp_path, text)
    with pytest.raises(DefinitionError) as caught:
        load_definition(path)
    line = line_of(text, "bad: indentation")
    assert caught.value.diagnostic().startswith(f"{path}:{line}:6: YAML syntax error: ")


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("", 1, "empty"),
        ("- name: x\n", 1, "must be a mapping"),
        ("name: !custom x\n", 1, "YAML syntax error"),
        ("base: &b {name: x}\nother:\n  <<: *b\n", 3, "merge keys"),
        ("name: x\n\nname: y\n", 3, "name: duplicate key (first at line 1)"),
    ],
)
def test_yaml_constructs_refused(tmp_path: Path, text: str, line: int, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(DefinitionError) as caught:
        load_definition(path)
    assert caught.value.diagnostic().startswith(f"{path}:{line}")
    assert message in caught.value.diagnostic()


def test_alias_expansion_is_bounded(tmp_path: Path) -> None:
    text = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    for name, previous in zip("bcdef", "abcde", strict=True):
        text += f"{name}: &{name} [{', '.join([f'*{previous}'] * 10)}]\n"
    with pytest.raises(DefinitionError, match="expands to more than 100,000 nodes"):
        load_definition(write(tmp_path, text + "name: x\n"))


def test_several_errors_report_the_first_and_a_count(tmp_path: Path) -> None:
    text = FULL.replace("linux/arm64]", "linux/sparc]").replace('ports: ["8080/tcp"]', "ports: [0]")
    path = write(tmp_path, text)
    with pytest.raises(DefinitionError) as caught:
        load_definition(path)
    diagnostic = caught.value.diagnostic()
    assert diagnostic.startswith(f"{path}:{line_of(text, 'platforms:')}: platforms[1]: ")
    assert diagnostic.endswith("(and 1 more error)")


# --- digest -----------------------------------------------------------------------------------------

COMPACT = """\
name: web
contents: {packages: [nginx, ca-certificates]}
paths: [{type: directory, path: /srv, mode: "755"}]
ports: [8080]
variants: {runtime: {}, dev: {contents: {packages: [bash]}}}
"""

REFORMATTED = """\
# Same definition: block style, comments, other key order and quoting.
variants:
  dev:
    contents:
      packages:
        - bash      # a shell for debugging
  runtime: {}
ports:
  - "8080/tcp"
paths:
  - mode: '0755'
    path: /srv
    type: directory

contents:
  packages:
    - nginx
    - 'ca-certificates'
name: "web"
"""


def test_digest_ignores_formatting(tmp_path: Path) -> None:
    compact = load_definition(write(tmp_path, COMPACT, "a.yaml"))
    reformatted = load_definition(write(tmp_path, REFORMATTED, "b.yaml"))
    digest = normalised_digest(compact)
    assert digest.startswith("sha256:") and len(digest) == len("sha256:") + 64
    assert normalised_digest(reformatted) == digest


def test_digest_changes_with_content(tmp_path: Path) -> None:
    digest = normalised_digest(load_definition(write(tmp_path, COMPACT)))
    changed = [
        COMPACT.replace("nginx", "nginx-light"),
        COMPACT.replace("packages: [bash]", "packages: [bash, less]"),
        COMPACT.replace('mode: "755"', 'mode: "750"'),
        COMPACT + "source-date-epoch: 1700000000\n",
    ]
    digests = {normalised_digest(load_definition(write(tmp_path, text))) for text in changed}
    assert digest not in digests
    assert len(digests) == len(changed)


def test_digest_is_of_content_not_location(tmp_path: Path) -> None:
    first = load_definition(write(tmp_path, COMPACT, "a.yaml"))
    second = load_definition(write(tmp_path, COMPACT, "b.yaml"))
    assert normalised_digest(first) == normalised_digest(second)
    assert "a.yaml" not in json.dumps(first.model_dump(mode="json"))


# --- schema -----------------------------------------------------------------------------------------


def test_checked_in_schema_is_current() -> None:
    assert SCHEMA_FILE.read_text(encoding="utf-8") == render_schema(), (
        "docs/definition-schema.json is stale: run bastion schema -o docs/definition-schema.json"
    )


def test_the_schema_command_writes_the_checked_in_schema(tmp_path: Path) -> None:
    """Issue 18: the schema comes from the one CLI (no second entry point that prints and exits)."""
    home = tmp_path / "home"
    printed = run_cli("schema", home=home)
    assert printed.code == 0 and printed.stdout == SCHEMA_FILE.read_text(encoding="utf-8")
    written = run_cli("schema", "-o", str(tmp_path / "schema.json"), home=home)
    assert written.code == 0 and (tmp_path / "schema.json").read_bytes() == SCHEMA_FILE.read_bytes()
    nowhere = run_cli("schema", "-o", str(tmp_path / "missing" / "schema.json"), home=home)
    assert nowhere.code == 2 and "missing" in nowhere.stderr and nowhere.seconds < 30


def test_schema_accepts_the_full_example_and_refuses_unknown_fields() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = definition_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    data = yaml.safe_load(FULL)
    assert list(validator.iter_errors(data)) == []
    assert list(validator.iter_errors({**data, "work_dir": "/"})) != []


def test_a_test_can_be_limited_to_platforms(tmp_path: Path) -> None:
    text = FULL.replace(
        "{name: no-shell, absent: /bin/sh}", "{name: no-shell, absent: /bin/sh, platforms: [linux/arm64/v8]}"
    )
    variant = load_definition(write(tmp_path, text)).variant("runtime")
    limited = {t.name: t.platforms for t in variant.tests}
    assert limited == {"passwd": None, "no-shell": ("linux/arm64",), "ssl": None}
