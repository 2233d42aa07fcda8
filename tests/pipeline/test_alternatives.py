"""Issue 17 item 7: the links update-alternatives would make, read from the packages' postinst (never run).

The parser is checked on postinst texts as Debian ships them (mawk's debhelper block, bash's one
argument per line, gcc's commented-out slave, computed arguments); the builder through ``bastion
build`` on packages served from a signed loopback repository: the highest priority wins, the links and
their origins are in the SBOM, and a package whose postinst asks for a link inside the dpkg database
or outside a plain path is refused with exit 2 and one line naming the .deb.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from tests.conftest import SigningKey, run_cli, serve_directory
from tests.supply.repo_slice import signed_slice

from bastion.errors import UnsafeArchiveError
from bastion.pipeline._alternatives import Choice, Link, Selection, declared, select

MAWK = b"""#!/bin/sh
set -e
# Automatically added by dh_installalternatives/13.7.1
if [ "$1" = "configure" ] || [ "$1" = "abort-upgrade" ] || [ "$1" = "abort-remove" ]; then
        update-alternatives --install /usr/bin/awk awk /usr/bin/mawk 5 \\
            --slave /usr/share/man/man1/awk.1.gz awk.1.gz /usr/share/man/man1/mawk.1.gz \\
            --slave /usr/bin/nawk nawk /usr/bin/mawk \\
            --slave /usr/share/man/man1/nawk.1.gz nawk.1.gz /usr/share/man/man1/mawk.1.gz
fi
# End automatically added section
"""
BASH = b"""#! /bin/bash
update-alternatives --install \\
    /usr/share/man/man7/builtins.7.gz \\
    builtins.7.gz \\
    /usr/share/man/man7/bash-builtins.7.gz \\
    10 \\
  || true
"""
GCC = b"""#! /bin/sh
update-alternatives --quiet \\
    --install /usr/bin/cc cc /usr/bin/gcc 20 \\
    #--slave /usr/share/man/man1/cc.1.gz cc.1.gz /usr/share/man/man1/gcc.1.gz

update-alternatives --remove rename /usr/bin/prename
update-alternatives --install /usr/bin/x x "/usr/lib/$ARCH/x" 10
echo "unbalanced quote
"""


def test_debian_postinst_forms_are_read() -> None:
    (awk,) = declared("mawk", MAWK, "mawk.deb")
    assert awk.master == Link("/usr/bin/awk", "awk", "/usr/bin/mawk") and awk.priority == 5
    assert [s.name for s in awk.slaves] == ["awk.1.gz", "nawk", "nawk.1.gz"]
    (builtins,) = declared("bash", BASH, "bash.deb")
    assert builtins.master.path == "/usr/share/man/man7/bash-builtins.7.gz" and builtins.priority == 10
    # The commented-out slave ends the command; --remove adds nothing; a computed path is unknowable.
    (cc,) = declared("gcc", GCC, "gcc.deb")
    assert cc.master == Link("/usr/bin/cc", "cc", "/usr/bin/gcc") and cc.slaves == ()


def test_auto_mode_takes_the_highest_priority_and_the_first_on_a_tie() -> None:
    def choice(path: str, priority: int, package: str) -> Choice:
        return Choice(Link("/usr/bin/pager", "pager", path), priority, (), package, f"{package}.deb")

    more, less, most, gone = (
        choice("/usr/bin/more", 50, "util-linux"),
        choice("/usr/bin/less", 77, "less"),
        choice("/usr/bin/most", 77, "most"),
        choice("/usr/bin/gone", 99, "gone"),
    )
    (selection,) = select([more, less, most, gone], lambda path: path != "/usr/bin/gone")
    assert selection.best.package == "less"
    assert [c.master.path for c in selection.choices] == ["/usr/bin/less", "/usr/bin/more", "/usr/bin/most"]
    assert selection.state() == (
        b"auto\n/usr/bin/pager\n\n/usr/bin/less\n77\n/usr/bin/more\n50\n/usr/bin/most\n77\n\n"
    )


def test_state_lists_each_choices_slaves_blank_when_missing() -> None:
    (awk,) = declared("mawk", MAWK, "mawk.deb")
    (selection,) = select([awk], lambda path: "nawk.1" not in path and "mawk.1" not in path)
    assert selection == Selection(selection.best, (selection.best,))
    assert (
        selection.state() == b"auto\n/usr/bin/awk\nnawk\n/usr/bin/nawk\n\n/usr/bin/mawk\n5\n/usr/bin/mawk\n\n"
    )


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("update-alternatives --install /var/lib/dpkg/status evil /usr/bin/x 1", "inside /var/"),
        ("update-alternatives --install /etc/alternatives/awk evil /usr/bin/x 1", "inside /etc/"),
        ("update-alternatives --install /usr/bin/../../etc/shadow evil /usr/bin/x 1", "not a plain"),
        ("update-alternatives --install usr/bin/x evil /usr/bin/x 1", "not a plain"),
        ("update-alternatives --install /usr/bin/x ../evil /usr/bin/x 1", "not a file name"),
    ],
)
def test_unsafe_declarations_are_refused(line: str, words: str) -> None:
    with pytest.raises(UnsafeArchiveError) as caught:
        declared("evil", line.encode(), "evil_1.0_all.deb")
    assert words in caught.value.diagnostic() and "evil_1.0_all.deb" in caught.value.diagnostic()


def test_declarations_are_bounded() -> None:
    script = b"".join(
        b"update-alternatives --install /usr/bin/t%d t%d /usr/bin/x 1\n" % (i, i) for i in range(300)
    )
    with pytest.raises(UnsafeArchiveError, match="more than 256"):
        declared("many", script, "many.deb")


# --- through the bastion command -------------------------------------------------------------------


def _deb(tmp: Path, name: str, postinst: str, files: dict[str, str]) -> Path:
    tree = tmp / "trees" / name
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "DEBIAN/control").write_text(
        f"Package: {name}\nVersion: 1.0\nArchitecture: all\nMaintainer: Test <test@example.org>\n"
        "Description: alternatives test package\n"
    )
    (tree / "DEBIAN/postinst").write_text(f"#!/bin/sh\nset -e\n{postinst}\nexit 0\n")
    (tree / "DEBIAN/postinst").chmod(0o755)
    for path, content in files.items():
        (tree / path).parent.mkdir(parents=True, exist_ok=True)
        (tree / path).write_text(content)
        (tree / path).chmod(0o755)
    deb = tmp / f"{name}_1.0_all.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(tree), str(deb)], check=True,
                   capture_output=True)  # fmt: skip
    return deb


def _definition(path: Path, uri: str, keyring: Path, packages: list[str]) -> Path:
    path.write_text(
        "name: alts\nimage: test/alts\ntags: ['1']\nplatforms: [linux/amd64]\n"
        f"contents:\n  repositories:\n    - uri: {uri}\n      suites: [bookworm]\n"
        f"  keyring: {keyring}\n  packages: [{', '.join(packages)}]\n"
        "variants:\n  dev: {accounts: {run-as: root}}\n"
    )
    return path


@pytest.fixture
def tools(tmp_path: Path) -> list[Path]:
    if shutil.which("dpkg-deb") is None:
        pytest.skip("dpkg-deb is not installed")
    return [
        _deb(tmp_path, "low", "update-alternatives --install /usr/bin/tool tool /usr/bin/tool-low 10",
             {"usr/bin/tool-low": "#!/bin/sh\n"}),
        _deb(tmp_path, "high", "update-alternatives --quiet --install /usr/bin/tool tool /usr/bin/tool-high 50 \\\n"
             "  --slave /usr/bin/tool-helper tool-helper /usr/bin/helper-high",
             {"usr/bin/tool-high": "#!/bin/sh\n", "usr/bin/helper-high": "#!/bin/sh\n"}),
    ]  # fmt: skip


def test_build_makes_the_highest_priority_links_and_the_sbom_says_why(
    tmp_path: Path, test_key: SigningKey, tools: list[Path]
) -> None:
    repo = signed_slice(tmp_path, test_key.clearsign, tools)
    home = tmp_path / "home"
    with serve_directory(repo.parent) as base:
        definition = _definition(tmp_path / "alts.yaml", f"{base}/repo", test_key.keyring, ["low", "high"])
        built = run_cli(
            "build", str(definition), "--variant", "dev", "--skip-tests", "--no-attest", home=home
        )
    assert built.code == 0, built.stderr
    sbom = run_cli("sbom", "test/alts:1-dev", "--format", "spdx-json", home=home)
    assert sbom.code == 0, sbom.stderr
    files = {f["fileName"]: f.get("comment", "") for f in json.loads(sbom.stdout)["files"]}
    for path in (
        "./usr/bin/tool",
        "./etc/alternatives/tool",
        "./usr/bin/tool-helper",
        "./var/lib/dpkg/alternatives/tool",
    ):
        assert "high_1.0_all.deb (priority 50, the highest of 2)" in files[path], (path, files.get(path))
    out = tmp_path / "oci"
    assert run_cli("export", "test/alts:1-dev", f"oci-dir://{out}:1", home=home).code == 0
    root = tmp_path / "rootfs"
    root.mkdir()
    index = json.loads((out / "index.json").read_text())
    manifest = json.loads((out / "blobs/sha256" / index["manifests"][0]["digest"][7:]).read_text())
    if "manifests" in manifest:
        manifest = json.loads((out / "blobs/sha256" / manifest["manifests"][0]["digest"][7:]).read_text())
    for layer in manifest["layers"]:
        subprocess.run(
            ["tar", "-xzf", str(out / "blobs/sha256" / layer["digest"][7:]), "-C", str(root)], check=True
        )
    assert (root / "usr/bin/tool").readlink() == Path("/etc/alternatives/tool")
    assert (root / "etc/alternatives/tool").readlink() == Path("/usr/bin/tool-high")
    state = (root / "var/lib/dpkg/alternatives/tool").read_text()
    assert (
        state
        == "auto\n/usr/bin/tool\ntool-helper\n/usr/bin/tool-helper\n\n/usr/bin/tool-high\n50\n/usr/bin/helper-high\n/usr/bin/tool-low\n10\n\n\n"
    )


@pytest.mark.parametrize(
    ("postinst", "words"),
    [
        ("update-alternatives --install /var/lib/dpkg/status evil /usr/bin/tool-low 99", "inside /var/"),
        ("update-alternatives --install /usr/bin/../../etc/passwd evil /usr/bin/tool-low 99", "not a plain"),
    ],
)
def test_build_refuses_a_postinst_asking_for_unsafe_links(
    tmp_path: Path, test_key: SigningKey, postinst: str, words: str
) -> None:
    if shutil.which("dpkg-deb") is None:
        pytest.skip("dpkg-deb is not installed")
    evil = _deb(tmp_path, "evil", postinst, {"usr/bin/tool-low": "x\n"})
    repo = signed_slice(tmp_path, test_key.clearsign, [evil])
    home = tmp_path / "home"
    started = time.monotonic()
    with serve_directory(repo.parent) as base:
        definition = _definition(tmp_path / "alts.yaml", f"{base}/repo", test_key.keyring, ["evil"])
        result = run_cli(
            "build", str(definition), "--variant", "dev", "--skip-tests", "--no-attest", home=home
        )
    assert time.monotonic() - started < 120
    assert result.code == 2, (result.code, result.stderr)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and words in errors[0] and "evil_1.0_all.deb" in errors[0], result.stderr
