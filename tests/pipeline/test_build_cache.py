"""No-op rebuilds: a platform image whose recipe was built before is taken from the store, and only then."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.conftest import catalog_copy, home_sharing_cache, run_cli

pytestmark = [pytest.mark.mirror, pytest.mark.slow]


def _build(definition: Path, home: Path, *extra: str) -> dict[str, object]:
    result = run_cli(
        "build",
        str(definition),
        "--locked",
        "--platform",
        "linux/amd64",
        "--format",
        "json",
        *extra,
        home=home,
    )
    assert result.code == 0, result.stderr
    (variant,) = json.loads(result.stdout)
    platform: dict[str, object] = variant["platforms"]["linux/amd64"]
    return {"index": variant["digest"], **platform}


def test_rebuild_reuses_only_what_is_the_same_and_still_in_the_store(
    tmp_path: Path, cached_home: Path
) -> None:
    definition = catalog_copy("static", tmp_path)
    home = home_sharing_cache(tmp_path, cached_home)

    untested = _build(definition, home, "--skip-tests")
    assert untested["cached"] is False
    # Tests were not run for that image, so asking for them builds (and tests) it again.
    tested = _build(definition, home)
    assert tested["cached"] is False
    assert tested["digest"] == untested["digest"]
    again = _build(definition, home)
    assert again["cached"] is True
    assert again["digest"] == tested["digest"]
    assert again["index"] == tested["index"]

    # --no-cache writes everything again, and gets the same bytes.
    forced = _build(definition, home, "--no-cache")
    assert forced["cached"] is False
    assert forced["digest"] == tested["digest"]

    # A blob gone from the store (a layer) means the record cannot be used.
    manifest = json.loads((home / "store/blobs/sha256" / str(tested["digest"]).split(":")[1]).read_bytes())
    (home / "store/blobs/sha256" / manifest["layers"][0]["digest"].split(":")[1]).unlink()
    rebuilt = _build(definition, home)
    assert rebuilt["cached"] is False
    assert rebuilt["digest"] == tested["digest"]
    assert (home / "store/blobs/sha256" / manifest["layers"][0]["digest"].split(":")[1]).is_file()
