"""The options a newcomer reads about work where the README says they do (issue 17, items 16 and 17):
a platform the definition does not list is refused naming the ones it does (not "run bastion lock",
which cannot add one); ``--format json`` works on ``images`` and ``lock``; every option in the README's
command table and its list of shared options is one the command takes."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from bastion.oci import Store
from tests.conftest import REPO_ROOT, CliResult, catalog_copy, home_sharing_cache, run_cli
from tests.registry.conftest import make_image


def _timed(*args: str, home: Path, cwd: Path | None = None) -> CliResult:
    started = time.monotonic()
    result = run_cli(*args, home=home, cwd=cwd)
    assert time.monotonic() - started < 120, args
    assert result.code in (0, 1, 2), result.stderr  # never an internal error
    return result


@pytest.mark.parametrize(
    "command",
    [
        ("build", "--locked"),
        ("build",),
        ("build", "--variant", "runtime", "--skip-tests"),
        ("fetch", "--locked"),
        ("packages", "--locked"),
        ("packages",),
    ],
)
def test_a_platform_the_definition_does_not_list_is_refused_naming_those_it_does(
    command: tuple[str, ...], tmp_path: Path
) -> None:
    definition = catalog_copy("static", tmp_path)
    result = _timed(
        command[0], str(definition), *command[1:], "--platform", "linux/s390x", home=tmp_path / "h"
    )
    assert result.code == 2
    line = result.stderr.strip()
    assert "\n" not in line and "linux/s390x" in line and "linux/amd64, linux/arm64" in line, line
    assert "platforms:" in line and "bastion lock" not in line
    assert str(definition) in line  # names the file to edit


def test_a_platform_one_variant_lacks_names_that_variant(tmp_path: Path) -> None:
    definition = tmp_path / "two.yaml"
    definition.write_text(
        "name: two\nplatforms: [linux/amd64, linux/arm64]\ncontents: {packages: [base-files]}\n"
        "variants:\n  runtime: {}\n  dev: {platforms: [linux/amd64]}\n"
    )
    result = _timed("packages", str(definition), "--platform", "linux/arm64", home=tmp_path / "h")
    assert result.code == 2 and "variant 'dev' builds linux/amd64" in result.stderr, result.stderr
    unknown = _timed(
        "packages", str(definition), "--variant", "nope", "--platform", "linux/amd64", home=tmp_path
    )
    assert unknown.code == 2 and "no variant 'nope'" in unknown.stderr


def test_platform_spellings_are_the_definitions(tmp_path: Path) -> None:
    """``linux/arm64/v8`` is the definition's ``linux/arm64``; the JSON format lists only it."""
    definition = catalog_copy("static", tmp_path)
    result = _timed("packages", str(definition), "--locked", "--platform", "linux/arm64/v8", "--format", "json",
                    home=tmp_path / "h")  # fmt: skip
    assert result.code == 0, result.stderr
    records = json.loads(result.stdout)
    assert records and {r["platform"] for r in records} == {"linux/arm64"}


def test_images_format_json(tmp_path: Path) -> None:
    home = tmp_path / "home"
    store = Store(home / "store")
    index = store.tag("bastion/tiny:1", make_image(store, layer_sizes=(100,)))
    listed = _timed("images", "--format", "json", home=home)
    assert listed.code == 0, listed.stderr
    assert json.loads(listed.stdout) == [
        {"reference": "bastion/tiny:1", "digest": index.digest, "mediaType": index.media_type}
    ]


@pytest.mark.mirror
def test_lock_format_json(cached_home: Path, tmp_path: Path) -> None:
    definition = catalog_copy("static", tmp_path)
    result = _timed(
        "lock", str(definition), "--format", "json", home=home_sharing_cache(tmp_path, cached_home)
    )
    assert result.code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["lock"] == str(definition.with_suffix(".lock.json"))
    assert set(doc["packages"]["runtime"]) == {"linux/amd64", "linux/arm64"}


def _command_groups(names: set[str], home: Path) -> set[str]:
    """Those of ``names`` that the real CLI treats as command groups: their help lists commands."""
    groups = set()
    for name in sorted(names):
        helped = _timed(name, "--help", home=home)
        assert helped.code == 0, (name, helped.stderr)
        if re.search(r"^\W*Commands\b", helped.stdout, re.MULTILINE):
            groups.add(name)
    return groups


def _readme_claims(home: Path) -> dict[str, set[str]]:
    """Command → the options the README says it takes: each ```bastion ...``` it shows, in the command
    table and in the text (a group's command is its first two words: ``attest refresh``, ``factory
    run``, ``source build``), and each item of the list of shared options (options before "on",
    commands after it)."""
    text = (REPO_ROOT / "README.md").read_text()
    spans = [span.split()[1:] for span in re.findall(r"`(bastion [a-z][^`]*)`", text)]
    groups = _command_groups({words[0] for words in spans}, home)
    assert {"attest", "db", "factory", "review", "sla", "source"} <= groups, groups
    claims: dict[str, set[str]] = {}
    for words in spans:
        command = " ".join(words[:2]) if words[0] in groups and len(words) > 1 else words[0]
        claims.setdefault(command, set()).update(re.findall(r"(?<![\w-])--[a-z][a-z-]*", " ".join(words)))
    shared = text.split("Options shared by several commands:", 1)[1].split("\n\n", 1)[0]
    for item in shared.split("\n- ")[1:]:
        head = re.split(r"choose|picks|;", item, maxsplit=1)[0]
        options, _, commands = head.partition(" on ")
        for command in re.findall(r"`([a-z]+(?: [a-z]+)?)`", commands):
            claims.setdefault(command, set()).update(re.findall(r"`(--[a-z-]+)", options))
    return claims


def test_every_option_the_readme_names_is_taken(tmp_path: Path) -> None:
    claims = _readme_claims(tmp_path)
    assert claims["images"] >= {"--format"} and claims["lock"] >= {"--format"}
    assert claims["packages"] >= {"--variant", "--platform", "--format"}
    for command, options in sorted(claims.items()):
        helped = _timed(*command.split(), "--help", home=tmp_path)
        assert helped.code == 0, (command, helped.stderr)
        for option in options:
            assert option in helped.stdout, f"README: `{command} {option}`, which it does not take"
    # "lock takes neither": it says so when asked rather than resolving part of a definition.
    refused = _timed(
        "lock", str(catalog_copy("static", tmp_path)), "--platform", "linux/amd64", home=tmp_path
    )
    assert refused.code == 2 and "--platform" in refused.stderr
