"""Rootfs assembly: real Debian packages from the host's mirror (through Bastion's verified client,
cached under the test BASTION_HOME), and packages built here by dpkg-deb for what the archive never
ships (hostile layouts, hardlinks across hardening). Real dpkg tools validate the dev database."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import stat
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bastion.cache import Cache, Download, Fetcher
from bastion.catalog import Accounts, Variant
from bastion.debian import DebArchive, host_sources, load_index, open_suites
from bastion.errors import InputError, IntegrityError, UnsafeArchiveError
from bastion.oci import write_tar
from bastion.pipeline._accounts import account_files
from bastion.pipeline._assemble import OsRelease, PackageInput, Rootfs, assemble, materialise

EPOCH = 1_700_000_000
RELEASE = OsRelease(name="bastion/test", version="1.0", debian_version="12", codename="bookworm")
REAL_PACKAGES = (
    "base-files",
    "netbase",
    "tzdata",
    "media-types",
    "libgcc-s1",
    "libc6",
    "libc-bin",
    "ca-certificates",
    "dash",
    "bash",
    "passwd",
    "dpkg",
)


def make_variant(kind: str = "runtime", **fields: Any) -> Variant:
    return Variant.model_validate({"name": kind, "kind": kind, "image": "bastion/test", **fields})


def build(packages: list[PackageInput], root: Path, kind: str = "runtime", **fields: Any) -> Rootfs:
    """Assemble (packages unpacked next to ``root``) and write the tree to ``root``: the tests check
    the tree, and that the directory shows it."""
    fs = assemble(
        packages,
        make_variant(kind, **fields),
        unpacked_dir=root.parent / "unpacked",
        source_date_epoch=EPOCH,
        os_release=RELEASE,
    )
    materialise(fs, root)
    return fs


class _NullSink:
    def write(self, data: bytes, /) -> int:
        return len(data)


def check_tree(fs: Rootfs) -> None:
    """What every assembled tree must be: writable as a layer (parents, hardlink targets, sources),
    with clamped mtimes, and matching the directory it was written to."""
    entries = [node.entry for node in fs.nodes.values()]
    write_tar(entries, _NullSink(), source_date_epoch=EPOCH)
    for path, node in fs.nodes.items():
        entry = node.entry
        assert entry.mtime <= EPOCH, path
        info = (fs.root / path).lstat()
        kind = {"dir": stat.S_ISDIR, "symlink": stat.S_ISLNK}.get(entry.kind, stat.S_ISREG)
        assert kind(info.st_mode), path
        assert not info.st_mode & 0o6000, f"{path}: setuid/setgid on disk"
        if entry.kind == "file":
            assert (fs.root / path).read_bytes() == fs.read(path), path
        if entry.kind == "symlink":
            assert os.readlink(fs.root / path) == entry.linkname
    on_disk = {str(p.relative_to(fs.root)) for p in fs.root.rglob("*")}
    assert on_disk == set(fs.nodes)


# --- real packages ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def real_packages(cached_home: Path) -> list[PackageInput]:
    cache = Cache(cached_home / "cache")
    packages = []
    with Fetcher(cache) as fetcher:
        suites = open_suites(host_sources(), fetcher)
        index = load_index(suites, "amd64", fetcher, cached_home / "cache" / "indices")
        for name in REAL_PACKAGES:
            record = index.candidates(name)[0]
            deb = fetcher.fetch(Download(record.url, record.sha256, record.size, record.filename))
            packages.append(
                PackageInput(
                    record.name,
                    record.version,
                    record.architecture,
                    record.source,
                    record.source_version,
                    deb,
                    record.sha256,
                )
            )
    return packages


@pytest.fixture(scope="session")
def runtime_fs(real_packages: list[PackageInput], tmp_path_factory: pytest.TempPathFactory) -> Rootfs:
    return build(real_packages, tmp_path_factory.mktemp("runtime") / "rootfs")


@pytest.fixture(scope="session")
def dev_fs(real_packages: list[PackageInput], tmp_path_factory: pytest.TempPathFactory) -> Rootfs:
    return build(real_packages, tmp_path_factory.mktemp("dev") / "rootfs", kind="dev")


@pytest.mark.mirror
def test_runtime_has_no_shell_package_manager_or_setuid(runtime_fs: Rootfs) -> None:
    check_tree(runtime_fs)
    nodes = runtime_fs.nodes
    for path in (
        "usr/bin/bash",
        "usr/bin/dash",
        "usr/bin/sh",
        "usr/bin/rbash",
        "usr/bin/dpkg",
        "usr/bin/dpkg-deb",
    ):
        assert path not in nodes and not os.path.lexists(runtime_fs.root / path), path
    removed = dict(runtime_fs.removed)
    assert removed["usr/bin/bash"] == "shell" and removed["usr/bin/dpkg"] == "package manager"
    assert not [path for path, node in nodes.items() if node.entry.mode & 0o6000]
    assert "usr/bin/passwd" in runtime_fs.stripped and nodes["usr/bin/passwd"].entry.mode == 0o755
    assert nodes["usr/lib/x86_64-linux-gnu/libc.so.6"].owner == "libc6"


@pytest.mark.mirror
def test_runtime_keeps_copyrights_and_drops_other_docs(runtime_fs: Rootfs) -> None:
    nodes = runtime_fs.nodes
    for package in ("bash", "libc6", "base-files", "tzdata"):
        assert nodes[f"usr/share/doc/{package}/copyright"].entry.kind == "file"
    docs = [p for p in nodes if p.startswith("usr/share/doc/") and p.count("/") > 3]
    assert docs and all(p.endswith("/copyright") for p in docs), docs
    for gone in ("usr/share/man", "usr/share/info", "usr/share/lintian", "usr/share/locale"):
        assert gone not in nodes and not (runtime_fs.root / gone).exists()
    assert "usr/share/zoneinfo/Europe/Paris" in nodes
    assert "usr/lib/locale/C.utf8/LC_CTYPE" in nodes
    assert ("usr/share/man", "manual pages") in runtime_fs.removed


@pytest.mark.mirror
def test_status_d_holds_control_files_verbatim(runtime_fs: Rootfs, real_packages: list[PackageInput]) -> None:
    for package in real_packages:
        with DebArchive(package.deb) as deb:
            members = deb.control_members()
        status = runtime_fs.nodes[f"var/lib/dpkg/status.d/{package.name}"]
        assert status.owner == "bastion" and status.entry.mode == 0o644
        text = (runtime_fs.root / f"var/lib/dpkg/status.d/{package.name}").read_bytes()
        control, _, conffiles = text.partition(b"Conffiles:\n")
        assert control == members["control"]  # the control file verbatim, then its conffiles
        for line in conffiles.decode().splitlines():
            path, md5 = line.split()
            assert hashlib.md5((runtime_fs.root / path.lstrip("/")).read_bytes()).hexdigest() == md5
        # md5sums: the member's lines for the files the image holds, and no other
        sums = (runtime_fs.root / f"var/lib/dpkg/status.d/{package.name}.md5sums").read_text().splitlines()
        shipped = members["md5sums"].decode().splitlines()
        assert set(sums) <= set(shipped)
        for line in shipped:
            md5, path = line.split(None, 1)
            merged = path.split("/")[0] in ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
            node = runtime_fs.nodes.get(f"usr/{path}" if merged else path)  # DEP 17
            assert (line in sums) == (node is not None and node.owner == package.name), line
    assert "var/lib/dpkg/status" not in runtime_fs.nodes
    assert b"\n /etc/services " in (runtime_fs.root / "var/lib/dpkg/status.d/netbase").read_bytes()


@pytest.mark.mirror
def test_accounts_homes_and_tmp(runtime_fs: Rootfs) -> None:
    root, nodes = runtime_fs.root, runtime_fs.nodes
    day = EPOCH // 86400
    assert (root / "etc/passwd").read_text() == (
        "root:x:0:0:root:/root:/usr/sbin/nologin\n"
        "nonroot:x:65532:65532:nonroot:/home/nonroot:/usr/sbin/nologin\n"
        "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
    )
    assert (root / "etc/group").read_text() == (
        "root:x:0:\ntty:x:5:\nshadow:x:42:\nstaff:x:50:\nnonroot:x:65532:\nnogroup:x:65534:\n"
    )
    assert (root / "etc/shadow").read_text() == (
        f"root:*:{day}:0:99999:7:::\nnonroot:!:{day}:0:99999:7:::\nnobody:*:{day}:0:99999:7:::\n"
    )
    shadow = nodes["etc/shadow"].entry
    assert (shadow.mode, shadow.uid, shadow.gid) == (0o640, 0, 42)
    assert (nodes["etc/passwd"].entry.mode, nodes["etc/passwd"].owner) == (0o644, "bastion")
    home = nodes["home/nonroot"].entry
    assert (home.kind, home.mode, home.uid, home.gid) == ("dir", 0o700, 65532, 65532)
    assert stat.S_IMODE((root / "home/nonroot").stat().st_mode) == 0o700
    assert (nodes["root"].entry.mode, nodes["root"].entry.uid) == (0o700, 0)
    tmp = nodes["tmp"].entry
    assert (tmp.mode, tmp.uid, tmp.gid) == (0o1777, 0, 0)
    assert b"hosts:          files dns" in (root / "etc/nsswitch.conf").read_bytes()
    assert nodes["etc/nsswitch.conf"].entry.mtime == EPOCH


@pytest.mark.mirror
def test_ca_bundle_is_the_concatenation(runtime_fs: Rootfs) -> None:
    certs = sorted((runtime_fs.root / "usr/share/ca-certificates").rglob("*.crt"))
    assert len(certs) > 100
    bundle = (runtime_fs.root / "etc/ssl/certs/ca-certificates.crt").read_bytes()
    assert bundle == b"".join(cert.read_bytes() for cert in certs)
    assert bundle.count(b"-----BEGIN CERTIFICATE-----") == len(certs)
    node = runtime_fs.nodes["etc/ssl/certs/ca-certificates.crt"]
    assert (node.entry.mode, node.owner, node.entry.mtime) == (0o644, "bastion", EPOCH)


@pytest.mark.mirror
def test_os_release_names_bastion_on_debian(runtime_fs: Rootfs) -> None:
    text = (runtime_fs.root / "etc/os-release").read_text()  # through the symlink, as tools read it
    fields = dict(line.split("=", 1) for line in text.splitlines())
    # Debian by ID (what scanners match security data on), Bastion by VARIANT (os-release(5)).
    assert fields["ID"] == "debian" and "ID_LIKE" not in fields and fields["NAME"] == '"Debian GNU/Linux"'
    assert fields["VARIANT"] == '"Bastion"' and fields["VARIANT_ID"] == "bastion"
    assert fields["VERSION_ID"] == '"12"' and fields["VERSION_CODENAME"] == "bookworm"
    assert fields["PRETTY_NAME"] == '"Bastion bastion/test (Debian GNU/Linux 12 bookworm)"'
    assert fields["IMAGE_ID"] == "bastion-test" and fields["IMAGE_VERSION"] == "1.0"
    link = runtime_fs.nodes["etc/os-release"].entry
    assert (link.kind, link.linkname) == ("symlink", "../usr/lib/os-release")
    assert runtime_fs.nodes["usr/lib/os-release"].owner == "bastion"
    assert ("usr/lib/os-release", "base-files", "bastion") in runtime_fs.replaced


@pytest.mark.mirror
def test_compat_symlinks(runtime_fs: Rootfs) -> None:
    for name in ("bin", "sbin", "lib", "lib64"):
        entry = runtime_fs.nodes[name].entry
        assert (entry.kind, entry.linkname, entry.mode, entry.uid) == ("symlink", f"usr/{name}", 0o777, 0)
    assert "lib32" not in runtime_fs.nodes
    # libc6's loader link is absolute, through the lib compat link: it resolves inside the image.
    loader = runtime_fs.nodes["usr/lib64/ld-linux-x86-64.so.2"].entry
    assert loader.linkname == "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"
    assert runtime_fs.nodes["usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"].entry.kind == "file"


@pytest.mark.mirror
def test_dev_keeps_everything_and_dpkg_reads_its_database(
    dev_fs: Rootfs, real_packages: list[PackageInput]
) -> None:
    check_tree(dev_fs)
    nodes = dev_fs.nodes
    assert nodes["usr/bin/bash"].entry.kind == "file" and "usr/bin/dpkg" in nodes
    assert nodes["usr/bin/passwd"].entry.mode == 0o4755 and not dev_fs.removed
    assert "usr/share/man/man1/bash.1.gz" in nodes
    assert (dev_fs.root / "etc/passwd").read_text().startswith("root:x:0:0:root:/root:/bin/bash\n")
    admin = dev_fs.root / "var/lib/dpkg"
    listed = subprocess.run(
        ["dpkg-query", f"--admindir={admin}", "-W", "-f", "${Package} ${Version} ${Status}\n"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert listed.stderr == ""
    expected = sorted(f"{p.name} {p.version} install ok installed" for p in real_packages)
    assert sorted(listed.stdout.splitlines()) == expected
    files = subprocess.run(
        ["dpkg-query", f"--admindir={admin}", "-L", "libc6"], capture_output=True, text=True, check=True
    )
    assert files.stderr == "" and "/usr/lib/x86_64-linux-gnu/libc.so.6" in files.stdout.splitlines()
    assert "var/lib/dpkg/info/libc6:amd64.list" in nodes  # Multi-Arch: same
    assert "var/lib/dpkg/info/bash.conffiles" in nodes and "var/lib/dpkg/info/bash.postinst" not in nodes
    # dpkg's own check of files against md5sums and conffile hashes: a file Bastion replaced (os-release)
    # is no longer the package's, so nothing differs.
    verify = subprocess.run(
        ["dpkg", f"--root={dev_fs.root}", "--verify"], capture_output=True, text=True, check=False
    )
    assert verify.stdout == "" and verify.stderr == "", verify.stdout + verify.stderr
    assert any(path == "usr/lib/os-release" for path, _, new in dev_fs.replaced if new == "bastion")


# --- packages built here ----------------------------------------------------------------------

Populate = Callable[[Path], None]


@pytest.fixture
def make_deb(tmp_path: Path) -> Callable[..., PackageInput]:
    if shutil.which("dpkg-deb") is None:
        pytest.skip("dpkg-deb is not installed")

    def make(name: str, populate: Populate, *, control_name: str | None = None) -> PackageInput:
        tree = tmp_path / "trees" / name
        (tree / "DEBIAN").mkdir(parents=True)
        (tree / "DEBIAN/control").write_text(
            f"Package: {control_name or name}\nVersion: 1.0\nArchitecture: all\n"
            "Maintainer: Test <test@example.org>\nDescription: assembly test package\n"
        )
        populate(tree)
        deb = tmp_path / f"{name}_1.0_all.deb"
        subprocess.run(
            ["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(tree), str(deb)],
            check=True,
            capture_output=True,
        )
        return PackageInput(name, "1.0", "all", name, "1.0", deb, _sha256(deb))

    return make


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _file(tree: Path, path: str, data: bytes = b"data\n", mode: int = 0o644) -> None:
    target = tree / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    target.chmod(mode)


def test_entry_beneath_another_package_symlink_is_refused(
    make_deb: Callable[..., PackageInput], tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()

    def link(tree: Path) -> None:
        (tree / "usr/share").mkdir(parents=True)
        (tree / "usr/share/data").symlink_to(outside)

    def beneath(tree: Path) -> None:
        _file(tree, "usr/share/data/evil")

    packages = [make_deb("linker", link), make_deb("writer", beneath)]
    with pytest.raises(UnsafeArchiveError, match="replace the symlink 'usr/share/data' of linker with a dir"):
        build(packages, tmp_path / "rootfs")
    assert list(outside.iterdir()) == []


def _ar_deb(path: Path, name: str, *members: tarfile.TarInfo) -> PackageInput:
    """A .deb whose data.tar holds exactly ``members`` (no parent directories, unlike dpkg-deb's),
    assembled by hand: ar(5) headers around debian-binary, control.tar and data.tar."""

    def tar(*infos: tuple[tarfile.TarInfo, bytes]) -> bytes:
        out = io.BytesIO()
        with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as archive:
            for info, data in infos:
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
        return out.getvalue()

    control = f"Package: {name}\nVersion: 1.0\nArchitecture: all\nDescription: raw\n".encode()
    parts = [
        ("debian-binary", b"2.0\n"),
        ("control.tar", tar((tarfile.TarInfo("./control"), control))),
        ("data.tar", tar(*((info, b"x" if info.isreg() else b"") for info in members))),
    ]
    blob = b"!<arch>\n"
    for member, data in parts:
        blob += f"{member:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(data):<10}`\n".encode() + data
        blob += b"\n" if len(data) % 2 else b""
    path.write_bytes(blob)
    return PackageInput(name, "1.0", "all", name, "1.0", path, _sha256(path))


def test_entry_whose_parent_is_a_symlink_is_refused(
    make_deb: Callable[..., PackageInput], tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()

    def link(tree: Path) -> None:
        (tree / "usr/share").mkdir(parents=True)
        (tree / "usr/share/data").symlink_to(outside)

    evil = tarfile.TarInfo("./usr/share/data/evil")
    writer = _ar_deb(tmp_path / "writer.deb", "writer", evil)
    with pytest.raises(UnsafeArchiveError, match="'usr/share/data' is a symlink, not a directory"):
        build([make_deb("linker", link), writer], tmp_path / "rootfs")
    assert list(outside.iterdir()) == []


def test_missing_parent_directories_are_made(tmp_path: Path) -> None:
    package = _ar_deb(tmp_path / "bare.deb", "bare", tarfile.TarInfo("./opt/bare/file"))
    fs = build([package], tmp_path / "rootfs", kind="dev")
    check_tree(fs)
    parent = fs.nodes["opt/bare"]
    assert (parent.entry.kind, parent.entry.mode, parent.owner) == ("dir", 0o755, "bare")


def test_directory_turned_into_file_is_refused(make_deb: Callable[..., PackageInput], tmp_path: Path) -> None:
    first = make_deb("first", lambda tree: _file(tree, "etc/app/conf"))
    second = make_deb("second", lambda tree: _file(tree, "etc/app"))
    with pytest.raises(UnsafeArchiveError, match="would replace the dir 'etc/app'"):
        build([first, second], tmp_path / "rootfs")


def test_package_name_must_match(make_deb: Callable[..., PackageInput], tmp_path: Path) -> None:
    package = make_deb("claimed", lambda tree: _file(tree, "etc/x"), control_name="other")
    with pytest.raises(IntegrityError, match="is package 'other'"):
        build([package], tmp_path / "rootfs")


def test_nonempty_root_is_refused(make_deb: Callable[..., PackageInput], tmp_path: Path) -> None:
    root = tmp_path / "rootfs"
    root.mkdir()
    (root / "leftover").write_text("x")
    with pytest.raises(InputError, match="not an empty directory"):
        build([make_deb("p", lambda tree: _file(tree, "etc/x"))], root)


def test_later_file_wins_and_shared_directories_merge(
    make_deb: Callable[..., PackageInput], tmp_path: Path
) -> None:
    def first(tree: Path) -> None:
        _file(tree, "usr/bin/tool", b"first\n", 0o755)
        (tree / "opt/shared").mkdir(parents=True)
        (tree / "opt/shared").chmod(0o750)

    def second(tree: Path) -> None:
        _file(tree, "usr/bin/tool", b"second\n", 0o700)
        _file(tree, "opt/shared/more")
        (tree / "opt/shared").chmod(0o755)

    fs = build([make_deb("first", first), make_deb("second", second)], tmp_path / "rootfs", kind="dev")
    check_tree(fs)
    tool = fs.nodes["usr/bin/tool"]
    assert (tool.owner, tool.entry.mode) == ("second", 0o700)
    assert (fs.root / "usr/bin/tool").read_bytes() == b"second\n"
    assert ("usr/bin/tool", "first", "second") in fs.replaced
    shared = fs.nodes["opt/shared"]
    assert (shared.owner, shared.entry.mode) == ("first", 0o750)


def test_setuid_stays_in_the_tree_of_dev_images_but_never_on_disk(
    make_deb: Callable[..., PackageInput], tmp_path: Path
) -> None:
    package = make_deb("suid", lambda tree: _file(tree, "usr/bin/su-thing", b"x", 0o4755))
    dev = build([package], tmp_path / "dev", kind="dev")
    assert dev.nodes["usr/bin/su-thing"].entry.mode == 0o4755
    assert stat.S_IMODE((dev.root / "usr/bin/su-thing").stat().st_mode) == 0o755
    runtime = build([package], tmp_path / "runtime")
    assert runtime.nodes["usr/bin/su-thing"].entry.mode == 0o755
    assert runtime.stripped == ["usr/bin/su-thing"]


def test_hardlinks_survive_hardening_of_their_target(
    make_deb: Callable[..., PackageInput], tmp_path: Path
) -> None:
    def populate(tree: Path) -> None:
        _file(tree, "usr/share/doc/linked/README", b"read me\n")
        _file(tree, "usr/share/doc/linked/copyright", b"public domain\n")
        (tree / "usr/share/linked").mkdir(parents=True)
        os.link(tree / "usr/share/doc/linked/README", tree / "usr/share/linked/README")
        os.link(tree / "usr/share/doc/linked/README", tree / "usr/share/linked/README.again")

    package = make_deb("linked", populate)
    dev = build([package], tmp_path / "dev", kind="dev")
    check_tree(dev)
    link = dev.nodes["usr/share/linked/README"].entry
    assert (link.kind, link.linkname) == ("hardlink", "usr/share/doc/linked/README")
    assert (dev.root / "usr/share/linked/README").samefile(dev.root / "usr/share/doc/linked/README")
    runtime = build([package], tmp_path / "runtime")
    check_tree(runtime)
    assert "usr/share/doc/linked/README" not in runtime.nodes
    promoted = runtime.nodes["usr/share/linked/README"].entry
    assert promoted.kind == "file" and runtime.read("usr/share/linked/README") == b"read me\n"
    again = runtime.nodes["usr/share/linked/README.again"].entry
    assert (again.kind, again.linkname) == ("hardlink", "usr/share/linked/README")
    assert (runtime.root / "usr/share/linked/README.again").read_bytes() == b"read me\n"
    assert "usr/share/doc/linked/copyright" in runtime.nodes


def test_dangling_symlinks_left_by_hardening_are_removed(
    make_deb: Callable[..., PackageInput], tmp_path: Path
) -> None:
    def populate(tree: Path) -> None:
        _file(tree, "usr/bin/dash", b"\x7fELF", 0o755)
        (tree / "usr/bin/sh").symlink_to("dash")
        (tree / "usr/bin/shell").symlink_to("/bin/sh")  # through the compat symlink, then "sh"
        (tree / "usr/bin/awk").symlink_to("/etc/alternatives/awk")  # dangles as shipped: kept

    fs = build([make_deb("shells", populate)], tmp_path / "rootfs")
    check_tree(fs)
    assert not {"usr/bin/dash", "usr/bin/sh", "usr/bin/shell"} & set(fs.nodes)
    assert ("usr/bin/shell", "symlink left dangling by the removals") in fs.removed
    assert fs.nodes["usr/bin/awk"].entry.kind == "symlink"


def test_definition_paths_and_users(make_deb: Callable[..., PackageInput], tmp_path: Path) -> None:
    package = make_deb("base", lambda tree: _file(tree, "etc/app.conf", b"packaged\n"))
    fs = build(
        [package],
        tmp_path / "rootfs",
        accounts={
            "users": [{"name": "app", "uid": 1000, "gid": 1000}],
            "groups": [{"name": "web", "gid": 33}],
        },
        paths=[
            {"type": "directory", "path": "/srv/app", "mode": "0750", "uid": 1000, "gid": 1000},
            {"type": "file", "path": "/etc/app.conf", "content": "mine\n", "mode": "0600"},
            {"type": "symlink", "path": "/bin/app", "target": "/srv/app/run"},
        ],
    )
    check_tree(fs)
    srv = fs.nodes["srv/app"]
    assert (srv.entry.mode, srv.entry.uid, srv.entry.gid, srv.owner) == (0o750, 1000, 1000, "bastion")
    assert (fs.root / "etc/app.conf").read_text() == "mine\n" and fs.nodes["etc/app.conf"].entry.mode == 0o600
    assert fs.nodes["usr/bin/app"].entry.linkname == "/srv/app/run"  # /bin is usr/bin
    assert "app:x:1000:1000:app:/home/app:/usr/sbin/nologin\n" in (fs.root / "etc/passwd").read_text()
    group = (fs.root / "etc/group").read_text()
    assert "web:x:33:\n" in group and "app:x:1000:\n" in group
    home = fs.nodes["home/app"].entry
    assert (home.mode, home.uid, home.gid) == (0o700, 1000, 1000)

    with pytest.raises(InputError, match="is a symlink"):
        build(
            [package], tmp_path / "bad", paths=[{"type": "file", "path": "/etc/os-release/x", "content": ""}]
        )


def test_account_conflicts() -> None:
    accounts = Accounts.model_validate({"users": [{"name": "nonroot", "uid": 1000, "gid": 1000}]})
    files = account_files(accounts, root_shell="/usr/sbin/nologin", source_date_epoch=EPOCH)
    assert b"nonroot:x:1000:1000:nonroot:/home/nonroot:" in files.passwd
    assert b"nonroot:x:65532" not in files.passwd
    # An own account at 65532 takes nonroot's place (and its group, renamed); two of them clash.
    own = Accounts.model_validate({"users": [{"name": "app", "uid": 65532, "gid": 65532}]})
    files = account_files(own, root_shell="/usr/sbin/nologin", source_date_epoch=EPOCH)
    assert b"app:x:65532:65532:app:/home/app:" in files.passwd and b"nonroot" not in files.passwd
    assert b"app:x:65532:\n" in files.group and b"nonroot" not in files.group
    own_group = Accounts.model_validate(
        {"users": [{"name": "app", "uid": 65532, "gid": 65532}], "groups": [{"name": "web", "gid": 65532}]}
    )
    files = account_files(own_group, root_shell="/usr/sbin/nologin", source_date_epoch=EPOCH)
    assert b"web:x:65532:\n" in files.group and b"nonroot" not in files.group + files.passwd
    clash = Accounts.model_validate(
        {"users": [{"name": "app", "uid": 65532, "gid": 65532}, {"name": "web", "uid": 65532, "gid": 65532}]}
    )
    with pytest.raises(InputError, match="same id 65532"):
        account_files(clash, root_shell="/usr/sbin/nologin", source_date_epoch=EPOCH)
    nobody = Accounts.model_validate({"users": [{"name": "guest", "uid": 65534, "gid": 65534}]})
    with pytest.raises(InputError, match="same id 65534"):
        account_files(nobody, root_shell="/usr/sbin/nologin", source_date_epoch=EPOCH)
    groups = Accounts.model_validate({"groups": [{"name": "admins", "gid": 0}]})
    with pytest.raises(InputError, match="same id 0"):
        account_files(groups, root_shell="/usr/sbin/nologin", source_date_epoch=EPOCH)


def test_damaged_unpacked_copy_is_refused_wherever_the_build_reads_it(
    make_deb: Callable[..., PackageInput], tmp_path: Path
) -> None:
    """A file whose bytes in the unpacked cache no longer match the SHA256 recorded at unpacking is
    refused by every reader that speaks for the image: the layer writer, the SBOM's and compliance
    rules' reads of the tree, and the tree written for the image tests."""
    from bastion.oci import MEDIA_TYPE_LAYER_GZIP, BlobWriter, PartCache, Slice, write_layer_parts
    from bastion.pipeline._sbom import tree_target

    data = b"#!/bin/false\n" + b"x" * 200
    package = make_deb("damaged", lambda tree: _file(tree, "usr/share/damaged/tool", data))
    fs = assemble(
        [package],
        make_variant(),
        unpacked_dir=tmp_path / "unpacked",
        source_date_epoch=EPOCH,
        os_release=RELEASE,
    )
    source = fs.nodes["usr/share/damaged/tool"].entry.source
    assert isinstance(source, Slice) and source.sha256
    with tree_target(fs, name="t:1", platform="linux/amd64", config={}) as target:
        assert target.read("/usr/share/damaged/tool") == data  # whole before the damage
    with source.file.open("r+b") as f:  # one byte changed, the size kept
        f.seek(source.offset + 20)
        f.write(b"y")
    with tree_target(fs, name="t:1", platform="linux/amd64", config={}) as target:
        assert target.read("/usr/share/damaged/tool", limit=4) == b"#!/b"  # a head is not checked
        with pytest.raises(IntegrityError, match="do not match the SHA256"):
            target.read("/usr/share/damaged/tool")
    with pytest.raises(IntegrityError, match="do not match the SHA256"):
        fs.read("usr/share/damaged/tool")  # what generated files (the CA bundle) are made from
    with pytest.raises(IntegrityError, match="do not match the SHA256"):
        materialise(fs, tmp_path / "root")
    entries = [node.entry for node in fs.nodes.values()]
    (tmp_path / "blobs").mkdir()
    with (
        pytest.raises(IntegrityError, match="do not match the SHA256"),
        BlobWriter(tmp_path / "blobs", MEDIA_TYPE_LAYER_GZIP) as out,
    ):
        write_layer_parts([entries], out, source_date_epoch=EPOCH, cache=PartCache(tmp_path / "parts"))
