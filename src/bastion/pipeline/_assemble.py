"""Assemble an image variant's root filesystem from verified .deb files, running no maintainer script.

The result is a tree of :class:`Node` (what the image layers are written from), held in memory:
numeric owners and modes as the packages ship them, and each file's content as a :class:`Slice` of its
package's unpacked copy (:mod:`bastion.pipeline._unpacked`) or as bytes Bastion generated. Nothing is
written to disk while assembling: on the disks builds run on, creating the ~2,400 files, directories
and symlinks of a small image cost more than everything else the assembly does. :func:`materialise`
writes the tree as a directory when something needs one (image tests run in a sandbox over it). That
directory is owned by whoever builds, and differs from the tree in two ways: it never has setuid or
setgid bits, and its owner can always read files and enter, list and write directories (``u+r`` and
``u+rwx``), so a build never needs privileges.

Steps, in order:

1. Unpack the packages in the order given, as dpkg would with ``/usr`` merged (DEP 17): paths under
   ``bin``, ``sbin`` and ``lib*`` land under ``usr/``, and the compat symlinks ``bin -> usr/bin`` ...
   are made afterwards. A directory shipped by several packages keeps the first one's metadata (dpkg
   keeps an existing directory); a later file, symlink or hardlink replaces an earlier one (dpkg would
   want ``Replaces:``), recorded in :attr:`Rootfs.replaced`. Nothing is ever written through a symlink:
   an entry whose parent is not a directory of the tree, or that would turn a directory into something
   else or the reverse, is an :class:`~bastion.errors.UnsafeArchiveError`; as :func:`materialise`
   makes every directory itself, no path resolution on disk can leave the root.
2. Accounts (:mod:`bastion.pipeline._accounts`) and their home directories.
3. Generated files: ``/etc/nsswitch.conf``, ``/usr/lib/os-release`` (with ``/etc/os-release`` linking
   to it), ``/tmp`` 1777, the CA bundle ``/etc/ssl/certs/ca-certificates.crt``, and where the image
   has libcrypto without the ``openssl`` package, the links of that package in OpenSSL's default
   directory ``/usr/lib/ssl`` (``cert.pem``, ``certs``, and ``private`` and ``openssl.cnf`` when
   ``/etc/ssl`` has them) so that OpenSSL finds the CA bundle without ``SSL_CERT_FILE``; the links
   the packages' ``update-alternatives --install`` calls would make (:mod:`bastion.pipeline._alternatives`;
   their state files in dev variants); in dev variants, apt's sources: the repositories and keyring
   the image was built from (:mod:`bastion.pipeline._aptsources`).
4. Runtime hardening (:mod:`bastion.pipeline._harden`), for ``kind: runtime`` variants only.
5. The definition's ``paths``, so the definition has the final word (also over hardening); a path in
   the dpkg database is refused: the database says what the packages put in the image.
6. The dpkg database (:mod:`bastion.pipeline._dpkgdb`), last, from the finished tree: ``status.d`` for
   runtime variants, a database dpkg and apt work with for dev variants; each package lists exactly
   the paths the image still holds from it, and its conffiles with their md5.
7. After assembly, the outputs of the definition's ``builds:`` and ``artifacts:`` (:func:`add_built`),
   each with the origin its SBOM entry records.

Every mtime in the tree is clamped to ``SOURCE_DATE_EPOCH``; what Bastion generates gets it exactly.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from bastion.catalog import DirectoryEntry, FileEntry, Variant, VariantKind
from bastion.debian import DebEntry
from bastion.errors import InputError, IntegrityError, UnsafeArchiveError
from bastion.oci import LayerEntry, Slice
from bastion.pipeline._accounts import NOLOGIN, account_files
from bastion.pipeline._alternatives import ADMINDIR, ALTDIR, declared, select
from bastion.pipeline._aptsources import (
    SOURCES,
    AptSource,
    deb822,
    installed_keyring,
    keyring_bytes,
    keyring_place,
)
from bastion.pipeline._dpkgdb import ADMIN, DEV_DIRS, control_field, database
from bastion.pipeline._harden import harden
from bastion.pipeline._release import OsRelease
from bastion.pipeline._tree import materialise
from bastion.pipeline._unpacked import Unpacked, unpack_all

if TYPE_CHECKING:
    from bastion.source import UpstreamFile

__all__ = [
    "BASTION",
    "Node",
    "OsRelease",
    "PackageInput",
    "Rootfs",
    "add_built",
    "add_files",
    "assemble",
    "materialise",
]

BASTION = "bastion"  # the owner of every path Bastion generates or changes
# DEP 17: the top-level directories merged into /usr, and the compat symlinks made for them.
_MERGED = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
_ALWAYS_MERGED = frozenset({"bin", "sbin", "lib"})
_CA_DIR = "usr/share/ca-certificates/"
_CA_BUNDLE = "etc/ssl/certs/ca-certificates.crt"
OPENSSLDIR = "usr/lib/ssl"  # Debian's libssl3 is built with --openssldir=/usr/lib/ssl
_LIBCRYPTO = re.compile(r"usr/lib/(?:[^/]+/)?libcrypto\.so\.[0-9]+")
# (name in OPENSSLDIR, target, what OpenSSL reads it as): the links of Debian's openssl package.
_OPENSSL_LINKS = (
    ("cert.pem", "/etc/ssl/certs/ca-certificates.crt", "OpenSSL's default CA file"),
    ("certs", "/etc/ssl/certs", "OpenSSL's default CA directory"),
    ("private", "/etc/ssl/private", "OpenSSL's default private key directory"),
    ("openssl.cnf", "/etc/ssl/openssl.cnf", "OpenSSL's default configuration file"),
)
_NSSWITCH = b"""\
# Written by Bastion: accounts come from the files in /etc, host names from /etc/hosts and DNS.
passwd:         files
group:          files
shadow:         files
gshadow:        files

hosts:          files dns
networks:       files

protocols:      files
services:       files
ethers:         files
rpc:            files
"""


@dataclass(frozen=True)
class PackageInput:
    """A verified .deb to unpack, with what the lock file says about it."""

    name: str
    version: str
    architecture: str
    source: str
    source_version: str
    deb: Path
    sha256: str


@dataclass(frozen=True)
class Node:
    """One path of the image: its layer entry and who put it there (a package, or ``bastion``)."""

    entry: LayerEntry
    owner: str


@dataclass
class Rootfs:
    """An assembled root filesystem: the tree ``nodes`` (path -> node), and the directory ``root``
    once :func:`materialise` has written it.

    ``nodes`` holds every path, parent directories included, without a leading ``/``; a file's
    content is its entry's ``source`` (a :class:`Slice`) or ``data``. ``removed`` lists what hardening removed as
    ``(path, reason)`` (a removed directory stands for its contents), ``stripped`` the paths whose
    setuid/setgid bits hardening cleared, and ``replaced`` the ``(path, old owner, new owner)`` of
    every path one package or Bastion wrote over another's. ``origins`` says, for each file Bastion
    wrote, where its content came from (for the SBOM).
    """

    nodes: dict[str, Node]
    root: Path | None = None
    removed: list[tuple[str, str]] = field(default_factory=list)
    stripped: list[str] = field(default_factory=list)
    replaced: list[tuple[str, str, str]] = field(default_factory=list)
    origins: dict[str, str] = field(default_factory=dict)  # file Bastion wrote -> where its content came from
    _links: dict[str, set[str]] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for path, node in self.nodes.items():
            if node.entry.kind == "hardlink":
                self._links.setdefault(node.entry.linkname, set()).add(path)

    def read(self, path: str) -> bytes:
        """The content of the file (or hardlink to a file) at ``path``."""
        entry = self.nodes[path].entry
        if entry.kind == "hardlink":
            entry = self.nodes[entry.linkname].entry
        return entry.content()

    def put(self, node: Node) -> None:
        """Add ``node`` to the tree (not the disk), replacing whatever was at its path."""
        path = node.entry.path
        self._forget(path)
        self.nodes[path] = node
        if node.entry.kind == "hardlink":
            self._links.setdefault(node.entry.linkname, set()).add(path)

    def _forget(self, path: str) -> None:
        old = self.nodes.pop(path, None)
        if old is not None and old.entry.kind == "hardlink":
            self._links.get(old.entry.linkname, set()).discard(path)
        survivors = sorted(link for link in self._links.pop(path, ()) if link in self.nodes)
        if survivors and old is not None:  # the first surviving link takes over the content
            first, *rest = survivors
            kept = self.nodes[first]
            content = replace(
                kept.entry, kind="file", linkname="", source=old.entry.source, data=old.entry.data
            )
            self.nodes[first] = Node(content, kept.owner)
            for link in rest:
                self.nodes[link] = Node(
                    replace(self.nodes[link].entry, linkname=first), self.nodes[link].owner
                )
            if rest:
                self._links[first] = set(rest)

    def discard(self, doomed: dict[str, str]) -> None:
        """Remove ``doomed`` (path -> reason; a directory's contents must be in it too) from the tree,
        and record the topmost paths in :attr:`removed`."""
        for path in sorted(doomed, reverse=True):  # contents before their directory
            if path in self.nodes:
                self._forget(path)
        for path in sorted(doomed):
            if path.rpartition("/")[0] not in doomed:
                self.removed.append((path, doomed[path]))


def _canonical(path: str) -> str:
    """A definition's absolute path as a tree path, with ``/usr`` merged: ``/bin/x`` -> ``usr/bin/x``."""
    parts = path.strip("/").split("/")
    return "/".join(["usr", *parts] if parts[0] in _MERGED else parts)


class _Builder:
    def __init__(self, source_date_epoch: int, fs: Rootfs | None = None) -> None:
        self.fs = fs if fs is not None else Rootfs({})
        self.epoch = source_date_epoch

    # --- low-level writes ----------------------------------------------------------------------

    def _parents(self, path: str, owner: str, where: str) -> None:
        """Check that ``path``'s parent is a directory of the tree (so are its ancestors, as only
        directories ever get children); make it, and its missing ancestors, if it is missing."""
        parent = path.rpartition("/")[0]
        if not parent:
            return
        node = self.fs.nodes.get(parent)
        if node is None:
            self._parents(parent, owner, where)
            self._mkdir(parent, 0o755, 0, 0, owner, self.epoch)
        elif node.entry.kind != "dir":
            raise UnsafeArchiveError(f"{parent!r} is a {node.entry.kind}, not a directory", where=where)

    def _clear(self, path: str, kind: str, owner: str, where: str) -> bool:
        """Make room at ``path`` for a ``kind``; False when an existing directory is kept (merged)."""
        self._parents(path, owner, where)
        old = self.fs.nodes.get(path)
        if old is None:
            return True
        if old.entry.kind == "dir" or kind == "dir":
            if old.entry.kind == kind:
                return False
            what = f"would replace the {old.entry.kind} {path!r} of {old.owner} with a {kind}"
            raise UnsafeArchiveError(what, where=where)
        self.fs._forget(path)
        if old.owner != owner:
            self.fs.replaced.append((path, old.owner, owner))
        return True

    def _mkdir(self, path: str, mode: int, uid: int, gid: int, owner: str, mtime: int) -> None:
        self.fs.put(Node(LayerEntry(path, "dir", mode, uid, gid, min(mtime, self.epoch)), owner))

    def _file(
        self, path: str, content: Slice | bytes, mode: int, uid: int, gid: int, owner: str, mtime: int
    ) -> None:
        source, data = (content, None) if isinstance(content, Slice) else (None, content)
        entry = LayerEntry(path, "file", mode, uid, gid, min(mtime, self.epoch), source=source, data=data)
        self.fs.put(Node(entry, owner))

    def _symlink(self, path: str, target: str, owner: str, mtime: int, uid: int = 0, gid: int = 0) -> None:
        entry = LayerEntry(path, "symlink", 0o777, uid, gid, min(mtime, self.epoch), linkname=target)
        self.fs.put(Node(entry, owner))

    # --- what Bastion generates ----------------------------------------------------------------

    def generate(
        self, path: str, data: bytes, mode: int = 0o644, uid: int = 0, gid: int = 0, *, origin: str
    ) -> None:
        """Write a file Bastion generates, replacing a package's file at that path."""
        self._clear(path, "file", BASTION, path)
        self._file(path, data, mode, uid, gid, BASTION, self.epoch)
        self.fs.origins[path] = origin

    def directory(self, path: str, mode: int, uid: int = 0, gid: int = 0) -> None:
        """Make a directory, or give an existing one this mode and owner."""
        if self._clear(path, "dir", BASTION, path):
            self._mkdir(path, mode, uid, gid, BASTION, self.epoch)
            return
        node = self.fs.nodes[path]
        if (node.entry.mode, node.entry.uid, node.entry.gid) != (mode, uid, gid):
            self.fs.put(Node(replace(node.entry, mode=mode, uid=uid, gid=gid), BASTION))

    def symlink(self, path: str, target: str, *, origin: str | None = None) -> None:
        """Make a symlink; one with an ``origin`` is recorded with it (for the SBOM) as files are."""
        self._clear(path, "symlink", BASTION, path)
        self._symlink(path, target, BASTION, self.epoch)
        if origin is not None:
            self.fs.origins[path] = origin

    # --- packages ------------------------------------------------------------------------------

    def unpack(self, packages: Sequence[Unpacked]) -> None:
        """Put the packages' entries into the tree, in order."""
        for package in packages:
            shipped = control_field(package.members.get("control", b""), "Package")
            if shipped != package.package.name:
                raise IntegrityError(
                    f"is package {shipped!r}, not {package.package.name!r}", where=package.package.deb.name
                )
            for entry, content in package.entries:
                self._entry(package.package.name, entry, content, f"{package.package.deb.name}:{entry.path}")

    def _entry(self, owner: str, entry: DebEntry, content: Slice | None, where: str) -> None:
        if not self._clear(entry.path, entry.kind, owner, where):
            return  # a directory already there: the first package's metadata stays
        if entry.kind == "dir":
            self._mkdir(entry.path, entry.mode, entry.uid, entry.gid, owner, entry.mtime)
        elif entry.kind == "file":
            assert content is not None  # every unpacked file has its slice
            self._file(entry.path, content, entry.mode, entry.uid, entry.gid, owner, entry.mtime)
        elif entry.kind == "symlink":
            self._symlink(entry.path, entry.linkname, owner, entry.mtime, entry.uid, entry.gid)
        else:
            linked = self.fs.nodes.get(entry.linkname)
            if linked is None or linked.entry.kind != "file":
                raise UnsafeArchiveError(f"hardlink target {entry.linkname!r} is not a file", where=where)
            mtime = min(entry.mtime, self.epoch)
            layer = LayerEntry(
                entry.path, "hardlink", entry.mode, entry.uid, entry.gid, mtime, entry.linkname
            )
            self.fs.put(Node(layer, owner))

    def dpkg_database(self, unpacked: Sequence[Unpacked], *, dev: bool) -> None:
        """The dpkg database of the finished tree (:mod:`bastion.pipeline._dpkgdb`)."""
        for path in (ADMIN, f"{ADMIN}/status.d") if not dev else (ADMIN, *DEV_DIRS):
            if path not in self.fs.nodes:
                self.directory(path, 0o755)
        for path, data, origin in database(unpacked, self.fs.nodes, _canonical, dev=dev):
            self.generate(path, data, origin=origin)

    def compat_symlinks(self) -> None:
        """``bin -> usr/bin`` and the like; ``lib64`` and the other multilib ones only when needed."""
        for name in _MERGED:
            merged = f"usr/{name}"
            if merged not in self.fs.nodes:
                if name not in _ALWAYS_MERGED:
                    continue
                self.directory(merged, 0o755)
            self.symlink(name, merged)

    def ca_bundle(self) -> None:
        """What ``update-ca-certificates`` makes for the default selection: every ``.crt`` shipped
        under ``/usr/share/ca-certificates``, concatenated in path order."""
        certs = sorted(
            path
            for path, node in self.fs.nodes.items()
            if path.startswith(_CA_DIR) and path.endswith(".crt") and node.entry.kind in ("file", "hardlink")
        )
        parts = [self.fs.read(path) for path in certs]
        self.generate(
            _CA_BUNDLE,
            b"".join(p if p.endswith(b"\n") else p + b"\n" for p in parts if p),
            origin=f"concatenation of the {len(certs)} certificates under /{_CA_DIR}, in path order",
        )

    def openssl_layout(self) -> None:
        """OpenSSL's default trust anchors and configuration, where an image has libcrypto but not the
        ``openssl`` package: the links that package ships in Debian's OPENSSLDIR (``/usr/lib/ssl``)
        into ``/etc/ssl``, each made only when its target is in the tree and nothing is at its path.

        Without them OpenSSL finds no CA at all unless ``SSL_CERT_FILE`` is set: its defaults are
        ``OPENSSLDIR/cert.pem`` and ``OPENSSLDIR/certs`` (X509_get_default_cert_file(3)), and a
        container started without the image's environment (``env -i``, a pod that sets its own, a
        subprocess given an empty one) has none."""
        if not any(_LIBCRYPTO.fullmatch(path) for path in self.fs.nodes):
            return
        for name, target, what in _OPENSSL_LINKS:
            path = f"{OPENSSLDIR}/{name}"
            if path in self.fs.nodes or target.lstrip("/") not in self.fs.nodes:
                continue
            origin = f"symlink to {target}: {what} (OPENSSLDIR /{OPENSSLDIR}), as Debian's openssl package ships it"
            self.symlink(path, target, origin=origin)

    def alternatives(self, unpacked: Sequence[Unpacked], *, dev: bool) -> None:
        """The links ``update-alternatives --install`` in the packages' postinst would make in
        ``--auto`` mode (:mod:`bastion.pipeline._alternatives`), with its state files in dev variants."""
        choices = []
        for item in unpacked:
            if postinst := item.members.get("postinst"):
                package = item.package
                deb = f"{package.name}_{package.version}_{package.architecture}.deb"
                choices += declared(package.name, postinst, deb)
        for selection in select(choices, lambda path: _canonical(path) in self.fs.nodes):
            best = selection.best
            origin = (
                f"update-alternatives --install {best.master.name} in the postinst of {best.where} "
                f"(priority {best.priority}, the highest of {len(selection.choices)}), as --auto mode sets it"
            )
            made = False
            for link in (best.master, *best.slaves):
                path = _canonical(link.link)
                node, parent = self.fs.nodes.get(path), self.fs.nodes.get(path.rpartition("/")[0])
                if (node is not None and node.entry.kind != "symlink") or parent is None:
                    continue  # update-alternatives neither replaces a real file nor makes directories
                if parent.entry.kind != "dir":
                    raise UnsafeArchiveError(
                        f"postinst: update-alternatives link {link.link!r} is under a non-directory",
                        where=best.where,
                    )
                self.symlink(f"{ALTDIR}/{link.name}", link.path, origin=origin)
                self.symlink(path, f"/{ALTDIR}/{link.name}", origin=origin)
                made = True
            if dev and made:
                self.generate(f"{ADMINDIR}/{best.master.name}", selection.state(), origin=origin)

    def apt_sources(self, sources: Sequence[AptSource]) -> None:
        """apt pointed at the repositories and keyring the image was built from
        (:mod:`bastion.pipeline._aptsources`)."""
        signed_by: dict[str, str] = {}
        for source in sources:
            if source.keyring in signed_by:
                continue
            held = keyring_place(source, self._sha256)
            if held is None:
                path = installed_keyring(source)
                origin = f"the keyring {source.keyring} the lock's suites were verified with (sha256 {source.keyring_sha256})"
                self.generate(path, keyring_bytes(source), origin=origin)
                held = f"/{path}"
            signed_by[source.keyring] = held
        origin = "the lock's suites and keyring, with the components the packages came from (deb822 sources)"
        self.generate(SOURCES, deb822(tuple(sources), signed_by), origin=origin)

    def _sha256(self, path: str) -> str | None:
        node = self.fs.nodes.get(path)
        if node is None or node.entry.kind not in ("file", "hardlink"):
            return None
        return hashlib.sha256(self.fs.read(path)).hexdigest()

    def definition_paths(self, variant: Variant) -> None:
        for item in variant.paths:
            path = _canonical(item.path)
            if not path:
                raise InputError("paths: '/' is the root, not a path to create")
            if path == ADMIN or path.startswith(f"{ADMIN}/"):
                raise InputError(
                    f"paths: {item.path}: the dpkg database is written by Bastion, from what the image holds"
                )
            try:
                if isinstance(item, DirectoryEntry):
                    self.directory(path, int(item.mode, 8), item.uid, item.gid)
                elif isinstance(item, FileEntry):
                    self.generate(
                        path,
                        item.content.encode(),
                        int(item.mode, 8),
                        item.uid,
                        item.gid,
                        origin=f"definition: paths entry {item.path}",
                    )
                else:
                    self.symlink(path, item.target)
            except UnsafeArchiveError as err:
                raise InputError(f"paths: {item.path}: {err.message}") from None


def _os_release(info: OsRelease) -> bytes:
    """os-release(5): the system is Debian (``ID=debian``, ``VERSION_ID``), and this image of it is
    Bastion's (``VARIANT``, ``VARIANT_ID``, ``IMAGE_ID``, ``IMAGE_VERSION``, ``PRETTY_NAME``).

    Scanners name the distribution by ``ID``: Syft and Grype write ``pkg:deb/<ID>/...`` purls and
    match vulnerability data on ``<ID>:<VERSION_ID>``, so a rebranded ``ID`` would hide every
    package from Debian's security data. os-release(5) provides ``VARIANT`` for exactly this."""

    def quote(value: str) -> str:
        return '"' + re.sub(r'([\\"$`])', r"\\\1", value) + '"'

    def ident(value: str) -> str:  # IMAGE_ID and IMAGE_VERSION allow [a-z0-9._-]
        return re.sub(r"[^a-z0-9._-]+", "-", value.lower()).strip("-") or "unknown"

    debian = f"{info.debian_version} ({info.codename})"
    lines = [
        f"PRETTY_NAME={quote(f'Bastion {info.name} (Debian GNU/Linux {info.debian_version} {info.codename})')}",
        'NAME="Debian GNU/Linux"',
        "ID=debian",
        f"VERSION={quote(debian)}",
        f"VERSION_ID={quote(info.debian_version)}",
        f"VERSION_CODENAME={ident(info.codename)}",
        'VARIANT="Bastion"',
        "VARIANT_ID=bastion",
        f"IMAGE_ID={ident(info.name)}",
        f"IMAGE_VERSION={ident(info.version)}",
        'HOME_URL="https://www.debian.org/"',
    ]
    return "".join(f"{line}\n" for line in lines).encode()


def assemble(
    packages: Sequence[PackageInput],
    variant: Variant,
    *,
    unpacked_dir: Path,
    source_date_epoch: int,
    os_release: OsRelease,
    apt_sources: Sequence[AptSource] = (),
) -> Rootfs:
    """Assemble ``variant``'s root filesystem from ``packages``, in memory.

    Packages are read from their unpacked copies under ``unpacked_dir``, made there first when
    missing (:mod:`bastion.pipeline._unpacked`). ``apt_sources`` are written for a dev variant's apt.
    :func:`add_files` writes what is made from the finished
    tree (the build-time SBOM).

    Raises :class:`~bastion.errors.UnsafeArchiveError` for a package that would write through a
    symlink or swap a directory for something else, :class:`~bastion.errors.IntegrityError` for a
    .deb that is corrupt or not the package named, and :class:`~bastion.errors.InputError` for
    accounts or paths of the definition that cannot apply.
    """
    builder = _Builder(source_date_epoch)
    unpacked = unpack_all(packages, unpacked_dir)
    builder.unpack(unpacked)
    builder.compat_symlinks()
    dev = variant.kind is VariantKind.DEV
    root_shell = NOLOGIN
    if dev:
        shells = ("usr/bin/bash", "usr/bin/sh")
        root_shell = next((f"/bin/{p.rpartition('/')[2]}" for p in shells if p in builder.fs.nodes), NOLOGIN)
    accounts = account_files(variant.accounts, root_shell=root_shell, source_date_epoch=source_date_epoch)
    origin = "accounts: root, nobody, nonroot and the definition's accounts"
    builder.generate("etc/passwd", accounts.passwd, origin=origin)
    builder.generate("etc/group", accounts.group, origin=origin)
    builder.generate(
        "etc/shadow", accounts.shadow, 0o640, 0, accounts.shadow_gid, origin=origin + " (locked)"
    )
    builder.generate(
        "etc/gshadow", accounts.gshadow, 0o640, 0, accounts.shadow_gid, origin=origin + " (locked)"
    )
    for home in accounts.homes:
        if home.path not in builder.fs.nodes:
            builder.directory(home.path, 0o700, home.uid, home.gid)
    builder.generate("etc/nsswitch.conf", _NSSWITCH, origin="Bastion: files-only name service switch")
    builder.generate(
        "usr/lib/os-release",
        _os_release(os_release),
        origin="Bastion: image name and version, Debian release",
    )
    builder.symlink("etc/os-release", "../usr/lib/os-release")
    builder.directory("tmp", 0o1777)
    if any(package.name == "ca-certificates" for package in packages):
        builder.ca_bundle()
    builder.openssl_layout()
    builder.alternatives(unpacked, dev=dev)
    if dev and apt_sources:
        builder.apt_sources(apt_sources)
    if not dev:
        harden(builder.fs)
    builder.definition_paths(variant)
    builder.dpkg_database(unpacked, dev=dev)
    return builder.fs


def add_built(rootfs: Rootfs, files: Sequence[UpstreamFile], *, source_date_epoch: int) -> None:
    """Write the outputs of a definition's upstream builds and artifacts, with their modes and owners,
    into the finished tree (after the runtime removals: they are what the definition asked for)."""
    builder = _Builder(source_date_epoch, rootfs)
    for item in files:
        path = _canonical(item.path)
        if not path or path == ADMIN or path.startswith(f"{ADMIN}/"):
            raise InputError(f"builds: {item.path}: not a path an output may take")
        try:
            builder.generate(path, item.data, item.mode, item.uid, item.gid, origin=item.origin)
        except UnsafeArchiveError as err:
            raise InputError(f"builds: {item.path}: {err.message}") from None


def add_files(rootfs: Rootfs, files: Sequence[tuple[str, bytes, str]], *, source_date_epoch: int) -> None:
    """Write files Bastion generates, given as ``(path, content, origin)``, into a finished tree."""
    builder = _Builder(source_date_epoch, rootfs)
    for path, data, origin in files:
        builder.generate(path, data, origin=origin)
