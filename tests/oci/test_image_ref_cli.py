"""The same reference text means the same image in every command (one parser, one resolver:
:func:`bastion.oci.parse_image_ref`). An ``oci-dir://`` layout whose path holds a colon is the case that
used to disagree: ``export`` cut the destination at its first colon while ``cves`` took the longest
existing path. Each command refuses the kinds of reference it does not take in one line (exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.conftest import CliResult, run_cli
from tests.image.layouts import E, add_image
from tests.vuln.helpers import KEV

from bastion.oci import Store

NAME = "test/app:1"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store holding one single-platform image ``test/app:1``, and a vulnerability database."""
    home = tmp_path_factory.mktemp("names") / "home"
    store = Store(home / "store")
    store.tag(NAME, add_image(store, [[E("etc", kind="dir", mode=0o755), E("etc/motd", data=b"hello\n")]]))
    imported = run_cli("db", "import", str(KEV), home=home)
    assert imported.code == 0, imported.stderr
    return home


def _ok(*args: str, home: Path) -> CliResult:
    result = run_cli(*args, home=home)
    assert result.code == 0, (args, result.stderr)
    return result


def _digests(reference: str, home: Path) -> dict[str, str]:
    """The digest each command reports for ``reference``."""
    inspect = json.loads(_ok("inspect", reference, home=home).stdout)
    listed = json.loads(_ok("attest", "list", reference, "--format", "json", home=home).stdout)
    cves = json.loads(_ok("cves", reference, "--format", "json", home=home).stdout)
    return {"inspect": inspect["digest"], "attest list": listed["digest"], "cves": cves["image"]["digest"]}


def test_a_layout_path_with_a_colon_names_one_image_everywhere(home: Path, tmp_path: Path) -> None:
    (tmp_path / "a:b").mkdir()
    layout = tmp_path / "a:b" / "layout"
    reference = f"oci-dir://{layout}:v1"
    exported = _ok("export", NAME, reference, "--no-attestations", home=home).stdout.strip()
    assert Store(layout, create=False).list_tags().keys() == {"v1"}  # not "b/layout:v1" in tmp/a
    assert not (tmp_path / "a").exists()
    stored = json.loads(_ok("inspect", NAME, home=home).stdout)["digest"]
    assert exported == stored
    assert set(_digests(reference, home).values()) == {stored}
    # Without the tag the layout's one image; pinned by digest the same.
    assert set(_digests(f"oci-dir://{layout}", home).values()) == {stored}
    assert set(_digests(f"oci-dir://{layout}@{stored}", home).values()) == {stored}


def test_the_store_name_names_the_same_image_in_every_command(home: Path) -> None:
    stored = json.loads(_ok("inspect", NAME, home=home).stdout)["digest"]
    assert set(_digests(NAME, home).values()) == {stored}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("inspect", "sbom:///x.json"), "`bastion inspect` does not take sbom://FILE"),
        (("inspect", "fs:///"), "`bastion inspect` does not take fs://DIR"),
        (("sbom", "sbom:///x.json"), "names an SBOM document, not an image"),
        (("compare", "fs:///", "sbom:///x.json"), "`bastion compare` does not take sbom://FILE"),
        (("attest", "list", "fs:///"), "fs:// images carry no attestations"),
        (("verify", "docker-archive:///x.tar"), "docker-archive:// images carry no attestations"),
        (("compliance", "sbom:///x.json"), "`bastion compliance` does not take sbom://FILE"),
        (("export", NAME, "fs:///tmp/x"), "the destination of `bastion export` does not take fs://DIR"),
        (("export", "oci-dir:///tmp/x", "oci-dir:///tmp/y"), "`bastion export` does not take oci-dir://"),
        (("push", NAME, "bastion/other:1"), "the destination of `bastion push` does not take a local store"),
        (("pull", "oci-dir:///tmp/x"), "`bastion pull` does not take oci-dir://"),
        (("mirror", "fs:///", "localhost:1/x:1"), "`bastion mirror` does not take fs://DIR"),
        (("cves", "ftp://host/x"), "unknown image reference scheme 'ftp://'"),
        (("cves", "oci-dir://"), "oci-dir:// names no path"),
        (("sbom", "oci-dir:///tmp/" + "x" * 5000), "longer than 4096 characters"),
    ],
    ids=lambda v: " ".join(v)[:40] if isinstance(v, tuple) else None,
)
def test_refusals_are_one_line(home: Path, args: tuple[str, ...], message: str) -> None:
    result = run_cli(*args, home=home)
    assert result.code == 2, result.stderr
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_inspect_refuses_a_layout_whose_manifest_is_not_a_manifest(home: Path, tmp_path: Path) -> None:
    """An ``oci-dir://`` layout is input from outside: a document that is not the object it must be
    is refused naming its digest (exit 2), never an internal error."""
    layout = Store(tmp_path / "hostile")
    blob = layout.put_blob(b"[1, 2, 3]", "application/vnd.oci.image.manifest.v1+json")
    layout.tag("bad:1", blob)
    result = run_cli("inspect", f"oci-dir://{tmp_path / 'hostile'}:bad:1", home=home)
    assert result.code == 2, result.stderr
    assert blob.digest in result.stderr and "manifest" in result.stderr


def test_reading_a_layout_writes_nothing_into_it(home: Path, tmp_path: Path) -> None:
    """``oci-dir://`` is the user's directory: ``inspect``, ``attest list``, ``verify`` and ``cves`` only
    read it (no ``.lock``, no ``blobs/`` or ``index.json`` made, nothing touched)."""
    layout = tmp_path / "layout"
    _ok("export", NAME, f"oci-dir://{layout}:v1", "--no-attestations", home=home)
    (layout / ".lock").unlink(missing_ok=True)

    def snapshot() -> dict[str, tuple[int, int]]:
        return {
            str(p.relative_to(layout)): (p.stat().st_mtime_ns, p.stat().st_size) for p in layout.rglob("*")
        }

    before = snapshot()
    reference = f"oci-dir://{layout}:v1"
    _digests(reference, home)
    run_cli("verify", reference, "--key", str(tmp_path / "none.pub"), home=home)
    assert snapshot() == before
