"""Issue 17, item 4: every catalog definition builds, with its tests, for every platform it lists,
from its committed lock (``--locked``), and the build leaves that lock byte for byte as it was.

Command and HTTP tests run for the host's platform; for the others only file and absent tests can
(no emulation), and a test limited to other platforms (``platforms:``) does not run."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from tests.conftest import REPO_ROOT, home_sharing_cache, run_cli

from bastion.catalog import load_definition

pytestmark = [pytest.mark.mirror, pytest.mark.slow]

ALL_DEFINITIONS = sorted((REPO_ROOT / "catalog").glob("*/*.yaml"))
# A definition built on Bastion's own repository (``contents.bastion-repository``) has no committed
# lock: its lock pins that machine's repository, which `bastion source build` makes first
# (tests/source/test_python_zlib.py builds it, with the source builds).
DEFINITIONS = [p for p in ALL_DEFINITIONS if p.with_name(f"{p.stem}.lock.json").exists()]


def test_only_definitions_on_bastions_repository_have_no_committed_lock() -> None:
    for path in sorted(set(ALL_DEFINITIONS) - set(DEFINITIONS)):
        assert load_definition(path).contents.bastion_repository, path


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, cached_home: Path) -> Path:
    """One fresh BASTION_HOME (empty store) for the module, with the session's warm package cache."""
    return home_sharing_cache(tmp_path_factory.mktemp("catalog"), cached_home)


def test_the_catalog_is_all_here() -> None:
    assert {p.stem for p in DEFINITIONS} >= {"static", "base", "python", "nginx"}


@pytest.mark.parametrize("definition", DEFINITIONS, ids=[p.stem for p in DEFINITIONS])
def test_catalog_definition_builds_for_every_platform(definition: Path, home: Path) -> None:
    spec = load_definition(definition)
    lock = definition.with_name(f"{definition.stem}.lock.json")
    before = lock.read_bytes()
    started = time.monotonic()
    # Signing is covered elsewhere; here what counts is assembly and the definition's own tests.
    result = run_cli("build", str(definition), "--locked", "--no-attest", "--format", "json", home=home)
    assert result.code == 0, result.stderr
    assert time.monotonic() - started < 150
    assert lock.read_bytes() == before
    built = {(v["variant"], platform) for v in json.loads(result.stdout) for platform in v["platforms"]}
    expected = {(name, p) for name in spec.variant_names() for p in spec.variant(name).platforms}
    assert built == expected
