"""The .deb reader against packages built by dpkg-deb, hostile ones built by GNU tar and ar, and real
Debian packages from the host's apt cache."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from bastion.debian._deb import DebArchive, DebEntry, read_control
from bastion.errors import InputError, IntegrityError, UnsafeArchiveError

# Fixtures: good packages built by dpkg-deb, hostile ones by GNU tar (or Python's tarfile) and ar,
# all generated under tmp_path at test time by the tools that make packages in the wild.

COMPRESSIONS = ["gzip", "xz", "zstd", "none"]
SUFFIX = {"gzip": ".gz", "xz": ".xz", "zstd": ".zst", "none": ""}
CONTROL = b"Package: hello\nVersion: 1.0-1\nArchitecture: all\nMaintainer: Test <test@example.org>\n"
CONTROL += b"Description: reader test package\n"
POSTINST = b"#!/bin/sh\nset -e\n"
HELLO = b"#!/bin/sh\necho hello\n"
CONFFILE = b"greeting = hello\n"


def _write(path: Path, data: bytes, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    path.chmod(mode)


def populate(root: Path) -> None:
    """A package tree with every kind of entry the reader reports."""
    _write(root / "DEBIAN/control", CONTROL)
    _write(root / "DEBIAN/postinst", POSTINST, 0o755)
    _write(root / "DEBIAN/conffiles", b"/etc/hello.conf\n")
    _write(root / "usr/bin/hello", HELLO, 0o755)
    _write(root / "usr/bin/hello-suid", HELLO, 0o4755)
    _write(root / "etc/hello.conf", CONFFILE)
    _write(root / "bin/foo", b"foo\n", 0o755)
    os.link(root / "bin/foo", root / "bin/foo-again")
    _write(root / "lib/x86_64-linux-gnu/libfoo.so.1", b"\x7fELF", 0o644)
    _write(root / "usr/share/doc/hello/copyright", b"public domain\n")
    (root / "usr/bin/hi").symlink_to("hello")
    (root / "usr/share/doc/hello/conf").symlink_to("/etc/hello.conf")
    (root / "var/tmp").mkdir(parents=True)
    (root / "var/tmp").chmod(0o1777)
    sums = []
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink() and "DEBIAN" not in path.parts:
            sums.append(f"{hashlib.md5(path.read_bytes()).hexdigest()}  {path.relative_to(root)}\n")
    _write(root / "DEBIAN/md5sums", "".join(sums).encode())


def gnu_tar(root: Path, *args: str) -> bytes:
    """``tar -C root -cf - args`` with GNU tar; pass ``-P`` to keep hostile names as they are."""
    return subprocess.run(
        ["tar", "-C", str(root), "--format=gnu", "-cf", "-", *args], check=True, capture_output=True
    ).stdout


def python_tar(*members: tuple[tarfile.TarInfo, bytes]) -> bytes:
    """A tar built with Python's tarfile, for entries GNU tar cannot be talked into (NUL in a name)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data else None)
    return out.getvalue()


def control_tar(tmp: Path) -> bytes:
    """A minimal control.tar (gzip) made by GNU tar."""
    root = tmp / "control-root"
    _write(root / "control", CONTROL)
    return subprocess.run(
        ["tar", "-C", str(root), "-czf", "-", "./control"], check=True, capture_output=True
    ).stdout


@pytest.fixture
def good_deb(tmp_path: Path) -> Callable[..., Path]:
    """``good_deb(compression, root_owner_group=True, chown=None)``: a package built by dpkg-deb."""

    if shutil.which("dpkg-deb") is None:
        pytest.skip("dpkg-deb is not installed (package dpkg)")

    def build(compression: str = "xz", *, root_owner_group: bool = True, chown: int | None = None) -> Path:
        root = tmp_path / f"root-{compression}"
        populate(root)
        if chown is not None:
            os.chown(root / "usr/bin/hello", chown, chown + 1)
        out = tmp_path / f"hello_1.0-1_all-{compression}.deb"
        owner = ["--root-owner-group"] if root_owner_group else []
        subprocess.run(
            ["dpkg-deb", *owner, f"-Z{compression}", "--build", str(root), str(out)],
            check=True,
            capture_output=True,
        )
        return out

    return build


@pytest.fixture
def ar_deb(tmp_path: Path) -> Callable[..., Path]:
    """``ar_deb(data, data_name="data.tar", control=None, version=b"2.0\\n")``: members packed by ``ar``."""
    if shutil.which("ar") is None or shutil.which("tar") is None:
        pytest.skip("ar or tar is not installed (packages binutils, tar)")
    counter = iter(range(1_000_000))

    def build(
        data: bytes,
        *,
        data_name: str = "data.tar",
        control: bytes | None = None,
        control_name: str = "control.tar.gz",
        version: bytes = b"2.0\n",
    ) -> Path:
        work = tmp_path / f"ar-{next(counter)}"
        work.mkdir()
        members = {"debian-binary": version, control_name: control or control_tar(work), data_name: data}
        for name, content in members.items():
            (work / name).write_bytes(content)
        out = work / "evil_1.0_all.deb"
        subprocess.run(["ar", "rc", str(out), *members], cwd=work, check=True, capture_output=True)
        return out

    return build


def read_all(deb: DebArchive) -> dict[str, tuple[DebEntry, bytes | None]]:
    return {entry.path: (entry, None if f is None else f.read()) for entry, f in deb.iter_data()}


def entries(path: Path, *, usrmerge: bool = False) -> dict[str, tuple[DebEntry, bytes | None]]:
    with DebArchive(path, usrmerge=usrmerge) as deb:
        return read_all(deb)


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_reads_a_dpkg_built_package(good_deb: Callable[..., Path], compression: str) -> None:
    path = good_deb(compression)
    with DebArchive(path) as deb:
        members = deb.control_members()
        assert deb.control() == CONTROL
        tree = read_all(deb)
    assert set(members) == {"control", "md5sums", "conffiles", "postinst"}
    assert members["postinst"] == POSTINST
    assert members["conffiles"] == b"/etc/hello.conf\n"
    assert read_control(path) == CONTROL

    assert all(p and not p.startswith(("/", "./")) and "/./" not in p for p in tree)
    hello, content = tree["usr/bin/hello"]
    assert (hello.kind, hello.mode, hello.uid, hello.gid, hello.size) == ("file", 0o755, 0, 0, len(HELLO))
    assert hello.mtime > 0 and hello.linkname == ""
    assert content == HELLO
    assert tree["usr/bin/hello-suid"][0].mode == 0o4755
    assert tree["etc/hello.conf"] == (tree["etc/hello.conf"][0], CONFFILE)
    assert tree["var/tmp"][0] == DebEntry("var/tmp", "dir", 0o1777, 0, 0, tree["var/tmp"][0].mtime, 0, "")
    assert tree["usr/bin/hi"][0].kind == "symlink" and tree["usr/bin/hi"][0].linkname == "hello"
    # An absolute symlink target is legitimate and reported verbatim, never refused.
    assert tree["usr/share/doc/hello/conf"][0].linkname == "/etc/hello.conf"
    links = [entry for entry, _ in tree.values() if entry.kind == "hardlink"]
    assert len(links) == 1 and {links[0].path, links[0].linkname} == {"bin/foo", "bin/foo-again"}
    assert links[0].size == 0 and tree[links[0].linkname][0].kind == "file"

    # Every file matches md5sums, so contents came through the decompressor intact.
    for line in members["md5sums"].decode().splitlines():
        digest, name = line.split("  ", 1)
        entry, data = tree[name]
        if entry.kind == "file":
            assert hashlib.md5(data or b"").hexdigest() == digest, name


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another owner needs root")
def test_owners_are_reported(good_deb: Callable[..., Path]) -> None:
    path = good_deb("xz", root_owner_group=False, chown=1234)
    entry = entries(path)["usr/bin/hello"][0]
    assert (entry.uid, entry.gid) == (1234, 1235)


def test_usrmerge_maps_top_level_directories_into_usr(good_deb: Callable[..., Path]) -> None:
    path = good_deb("zstd")
    plain, merged = entries(path), entries(path, usrmerge=True)
    assert "bin/foo" in plain and "usr/bin/foo" not in plain
    assert {"usr/bin/foo", "usr/bin/foo-again", "usr/lib/x86_64-linux-gnu/libfoo.so.1"} <= set(merged)
    assert not any(p.split("/")[0] in {"bin", "lib"} for p in merged)
    assert merged["usr/bin"][0].kind == "dir" and merged["usr/lib"][0].kind == "dir"
    assert merged["usr/bin/foo"][1] == b"foo\n" or merged["usr/bin/foo-again"][1] == b"foo\n"
    link = next(entry for entry, _ in merged.values() if entry.kind == "hardlink")
    assert link.linkname in {"usr/bin/foo", "usr/bin/foo-again"}  # hardlink targets follow the mapping


def test_usrmerge_skips_compat_symlinks_and_refuses_other_clashes(
    tmp_path: Path, ar_deb: Callable[..., Path]
) -> None:
    root = tmp_path / "tree"
    (root / "usr/bin").mkdir(parents=True)
    (root / "bin").symlink_to("usr/bin")
    (root / "lib64").symlink_to("/opt/lib64")
    compat = ar_deb(gnu_tar(root, "--no-recursion", "./", "./usr", "./usr/bin", "./bin"))
    assert set(entries(compat, usrmerge=True)) == {"usr", "usr/bin"}
    assert set(entries(compat)) == {"usr", "usr/bin", "bin"}
    clash = ar_deb(gnu_tar(root, "--no-recursion", "./usr", "./usr/bin", "./lib64"))
    with pytest.raises(UnsafeArchiveError, match="merged /usr/lib64") as err:
        entries(clash, usrmerge=True)
    assert err.value.where is not None and err.value.where.endswith(":./lib64")


def test_dot_segments_are_collapsed(ar_deb: Callable[..., Path]) -> None:
    info = tarfile.TarInfo("usr/./share//doc/./x")
    path = ar_deb(python_tar((info, b"x")))
    assert list(entries(path)) == ["usr/share/doc/x"]


def _hostile(tmp_path: Path, case: str) -> tuple[bytes, str]:
    """A data.tar with one hostile entry, and the entry name the refusal must show."""
    root = tmp_path / "tree"
    root.mkdir()
    (root / "a").write_bytes(b"a")
    if case == "dotdot":
        return gnu_tar(root, "-P", "--transform", r"s,^\./a$,./../evil,", "./a"), "./../evil"
    if case == "absolute":
        return gnu_tar(root, "-P", "--transform", r"s,^\./a$,/etc/evil,", "./a"), "/etc/evil"
    if case in ("hardlink-escape", "hardlink-absolute"):
        target = "../../etc/passwd" if case == "hardlink-escape" else "/etc/passwd"
        (root / "b").hardlink_to(root / "a")
        return gnu_tar(root, "-P", "--transform", rf"s,^\./a$,{target},RSh", "./a", "./b"), "./b"
    if case == "hardlink-unknown-target":
        (root / "b").hardlink_to(root / "a")
        return gnu_tar(root, "--transform", r"s,^\./a$,./etc/shadow,RSh", "./a", "./b"), "./b"
    if case == "chardev":
        info = tarfile.TarInfo("./dev/null")
        info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, 1, 3
        return python_tar((info, b"")), "./dev/null"
    if case == "blockdev":
        info = tarfile.TarInfo("./dev/sda")
        info.type, info.devmajor, info.devminor = tarfile.BLKTYPE, 8, 0
        return python_tar((info, b"")), "./dev/sda"
    if case == "fifo":
        subprocess.run(["mkfifo", str(root / "fifo")], check=True)
        return gnu_tar(root, "./fifo"), "./fifo"
    if case == "nul":
        info = tarfile.TarInfo("./usr/ab")
        info.pax_headers = {"path": "./usr/a\0b"}  # a ustar name cannot hold a NUL, a pax path can
        return python_tar((info, b"x")), r"./usr/a\x00b"
    if case == "beneath-symlink":
        (root / "x").symlink_to("/etc")
        (root / "d").mkdir()
        (root / "d/passwd").write_bytes(b"root::0:0::/:/bin/sh\n")
        return gnu_tar(root, "--transform", r"s,^\./d/,./x/,", "./x", "./d/passwd"), "./x/passwd"
    raise AssertionError(case)


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("dotdot", "'..' segment"),
        ("absolute", "is absolute"),
        ("hardlink-escape", r"hardlink target \.\./\.\./etc/passwd has a '\.\.' segment"),
        ("hardlink-absolute", "hardlink target /etc/passwd is absolute"),
        ("hardlink-unknown-target", "not an earlier file"),
        ("chardev", "device node"),
        ("blockdev", "device node"),
        ("fifo", "FIFO"),
        ("nul", "NUL"),
        ("beneath-symlink", "beneath a symlink"),
    ],
)
def test_hostile_entries_are_refused(
    tmp_path: Path, ar_deb: Callable[..., Path], case: str, reason: str
) -> None:
    data, shown = _hostile(tmp_path, case)
    path = ar_deb(data)
    with pytest.raises(UnsafeArchiveError, match=reason) as err:
        entries(path)
    assert err.value.where == f"{path.name}:data.tar:{shown}"
    assert "\n" not in err.value.diagnostic()


def test_a_real_device_node_made_by_mknod_is_refused(tmp_path: Path, ar_deb: Callable[..., Path]) -> None:
    root = tmp_path / "tree"
    root.mkdir()
    made = subprocess.run(["mknod", str(root / "null"), "c", "1", "3"], check=False, capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"mknod is not permitted here: {made.stderr.decode().strip()}")
    with pytest.raises(UnsafeArchiveError, match="device node"):
        entries(ar_deb(gnu_tar(root, "./null")))


def test_symlinks_in_control_tar_are_refused(tmp_path: Path, ar_deb: Callable[..., Path]) -> None:
    root = tmp_path / "control"
    root.mkdir()
    (root / "control").write_bytes(CONTROL)
    (root / "postinst").symlink_to("/etc/shadow")
    path = ar_deb(
        gnu_tar(root, "./"), control=gnu_tar(root, "./control", "./postinst"), control_name="control.tar"
    )
    with DebArchive(path) as deb, pytest.raises(UnsafeArchiveError, match="not a regular file"):
        deb.control_members()


@pytest.mark.parametrize(("member", "name"), [("data", "data.tar.bz2"), ("control", "control.tar.bz2")])
def test_unknown_compression_is_refused(ar_deb: Callable[..., Path], member: str, name: str) -> None:
    tar = python_tar((tarfile.TarInfo("./x"), b"x"))
    path = ar_deb(tar, data_name=name) if member == "data" else ar_deb(tar, control=tar, control_name=name)
    with pytest.raises(UnsafeArchiveError, match="unknown compression") as err:
        DebArchive(path)
    assert err.value.where == f"{path.name}:{name}"


@pytest.mark.parametrize("version", [b"3.0\n", b"0.939000\n", b"2\n", b""])
def test_format_version_must_be_2x(ar_deb: Callable[..., Path], version: bytes) -> None:
    path = ar_deb(python_tar((tarfile.TarInfo("./x"), b"x")), version=version)
    with pytest.raises(IntegrityError, match=r"want 2\.x"):
        DebArchive(path)


def test_version_with_a_newer_minor_is_accepted(ar_deb: Callable[..., Path]) -> None:
    path = ar_deb(python_tar((tarfile.TarInfo("./x"), b"x")), version=b"2.1\n")
    assert list(entries(path)) == ["x"]


def test_not_an_ar_archive(tmp_path: Path) -> None:
    path = tmp_path / "x.deb"
    path.write_bytes(b"PK\x03\x04 certainly not a deb")
    with pytest.raises(IntegrityError, match="not a Debian package") as err:
        DebArchive(path)
    assert err.value.where == "x.deb"


def test_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot open"):
        DebArchive(tmp_path / "absent.deb")


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_truncated_file_is_an_integrity_error(good_deb: Callable[..., Path], compression: str) -> None:
    path = good_deb(compression)
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(IntegrityError, match="truncated") as err:
        DebArchive(path)
    assert type(err.value) is IntegrityError


@pytest.mark.parametrize("compression", ["gzip", "xz", "zstd"])
def test_truncated_compressed_member_is_an_integrity_error(
    tmp_path: Path, ar_deb: Callable[..., Path], compression: str
) -> None:
    """The ar container is whole, the compressed data.tar inside it is cut short."""
    root = tmp_path / "tree"
    root.mkdir()
    (root / "big").write_bytes(hashlib.sha256(b"x").digest() * 40_000)
    tar = root.parent / "data.tar"
    tar.write_bytes(gnu_tar(root, "./"))
    compressed = subprocess.run([compression, "-c", str(tar)], check=True, capture_output=True).stdout
    path = ar_deb(compressed[:-7], data_name=f"data.tar{SUFFIX[compression]}")
    with pytest.raises(IntegrityError, match="truncated"):
        entries(path)


@pytest.mark.parametrize("compression", ["gzip", "xz", "zstd"])
def test_corrupt_data_is_an_integrity_error(good_deb: Callable[..., Path], compression: str) -> None:
    path = good_deb(compression)
    blob = bytearray(path.read_bytes())
    data_at = blob.index(b"data.tar") + 60  # the data member starts after its 60-byte ar header
    for offset in range(data_at + 40, len(blob) - 20, 7):
        blob[offset] ^= 0x55
    path.write_bytes(bytes(blob))
    with pytest.raises(IntegrityError, match="corrupt") as err:
        entries(path)
    assert type(err.value) is IntegrityError


def test_a_file_stream_expires_when_iteration_moves_on(good_deb: Callable[..., Path]) -> None:
    with DebArchive(good_deb("xz")) as deb:
        streams = [f for _, f in deb.iter_data() if f is not None]
    with pytest.raises(ValueError, match="moved on"):
        streams[0].read()


def test_close_releases_the_file(good_deb: Callable[..., Path]) -> None:
    deb = DebArchive(good_deb("gzip"))
    deb.close()
    deb.close()
    with pytest.raises(ValueError, match="closed"):
        list(deb.iter_data())


def _real_debs() -> list[Path]:
    cache = Path("/var/cache/apt/archives")
    debs = sorted(cache.glob("*.deb"), key=lambda p: p.stat().st_size) if cache.is_dir() else []
    return debs[:1] + debs[len(debs) // 2 : len(debs) // 2 + 1]


@pytest.mark.parametrize("path", _real_debs() or [None], ids=lambda p: p.name if p else "none")
def test_real_debian_package(path: Path | None) -> None:
    if path is None:
        pytest.skip("no .deb in /var/cache/apt/archives")
    with DebArchive(path) as deb:
        members = deb.control_members()
        assert deb.control().startswith(b"Package: ")
        tree = read_all(deb)
    for line in members.get("md5sums", b"").decode().splitlines():
        digest, name = line.split("  ", 1)
        entry, data = tree[name]
        if entry.kind == "file":
            assert hashlib.md5(data or b"").hexdigest() == digest, name
