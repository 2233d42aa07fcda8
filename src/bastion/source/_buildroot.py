"""The build root: the essential set, ``build-essential`` and a source's ``Build-Depends``, installed with
dpkg from verified packages, configured, and cached by the digest of its package set.

Bastion's image assembly never runs maintainer scripts, which is right for images and not enough to
build in: dpkg, perl and gcc need configured state (alternatives, diversions, ``ld.so.cache``). So the
build root is made as debootstrap makes a chroot, with every step in the sandbox (``bastion.sandbox``):

1. each verified ``.deb`` is unpacked with ``dpkg-deb -x`` (the host's, read-only) into an empty tree
   that has the merged-/usr links, as the sandbox's root — an unprivileged host id;
2. in that tree, as its root, ``dpkg --install`` of every package, which unpacks them again into dpkg's
   database and runs their maintainer scripts — with no network, and only the ids of the sandbox's block.

Packages are resolved by Bastion's own resolver from the verified ``Packages`` indices, with nothing
pruned (maintainer scripts do run here). A finished root is renamed into place, so a cached one is whole;
builds see it read-only.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bastion.cache import Download, Fetcher
from bastion.debian import (
    PackageIndex,
    PackageRecord,
    SourceRecord,
    parse_relations,
    resolve,
)
from bastion.errors import InputError, ResolutionError
from bastion.sandbox import Mount, Outcome, Step, give_to_sandbox, host_owner, run_step

__all__ = ["BuildRoot", "build_dependencies", "prepare_build_root", "prepare_package_root"]

# Bump when the way a root is made changes, so cached roots made the old way are not used.
_FORMAT = 1
# What every Debian build may assume (Policy §4.2: build-essential need not be declared).
_ALWAYS = ("build-essential", "dpkg-dev")
# debootstrap's merged-/usr links for amd64 (scripts/debian-common, "merge_usr").
_MERGED = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_INSTALL_TIMEOUT = 3600.0


@dataclass(frozen=True)
class BuildRoot:
    path: Path
    packages: tuple[PackageRecord, ...]
    digest: str  # sha256 of the package set: names the cached root


def build_dependencies(record: SourceRecord, index: PackageIndex) -> list[str]:
    """The requests for the resolver: essential packages, build-essential, and for each group of
    ``Build-Depends``, ``Build-Depends-Arch`` and ``Build-Depends-Indep`` that applies to the
    architecture (build profiles are not active: Policy §7.1) its first alternative the index has."""
    arch = index.architecture
    requests = [*index.essential(), *_ALWAYS]
    for field in (record.build_depends, record.build_depends_arch, record.build_depends_indep):
        if not field:
            continue
        try:
            groups = parse_relations(field, arch)
        except ValueError as exc:
            raise InputError(f"malformed Build-Depends: {exc}", where=f"source {record.name}") from None
        for group in groups:
            usable = next(
                (rel for rel in group if index.candidates(rel.name) or index.providers(rel.name)), None
            )
            if usable is None:
                wanted = " | ".join(str(rel) for rel in group)
                raise ResolutionError(
                    f"missing build dependency: {wanted} is in none of the suites",
                    where=f"source {record.name} {record.version}",
                )
            requests.append(usable.name)
    return list(dict.fromkeys(requests))


def _check_versions(record: SourceRecord, packages: dict[str, PackageRecord], arch: str) -> None:
    """A resolved build dependency must satisfy its version relation (Policy §7.1)."""
    for field in (record.build_depends, record.build_depends_arch, record.build_depends_indep):
        for group in parse_relations(field, arch) if field else ():
            present = [rel for rel in group if rel.name in packages]
            if present and not any(rel.accepts(packages[rel.name].version) for rel in present):
                wanted = " | ".join(str(rel) for rel in group)
                raise ResolutionError(
                    f"missing build dependency: no version in the suites satisfies {wanted}",
                    where=f"source {record.name} {record.version}",
                )


def prepare_build_root(
    record: SourceRecord,
    index: PackageIndex,
    fetcher: Fetcher,
    roots: Path,
    *,
    on_line: Callable[[str], None] | None = None,
) -> BuildRoot:
    """The build root for ``record``: from the cache under ``roots`` when its package set was built before."""
    try:
        resolution = resolve(index, build_dependencies(record, index), prune=frozenset())
    except ResolutionError as exc:
        raise ResolutionError(
            f"missing build dependency: {exc.message}", where=f"source {record.name}"
        ) from None
    packages = {p.name: p for p in resolution.packages}
    _check_versions(record, packages, index.architecture)
    return _made(resolution.packages, fetcher, roots, f"source {record.name}", on_line)


def prepare_package_root(
    packages: Sequence[str],
    index: PackageIndex,
    fetcher: Fetcher,
    roots: Path,
    *,
    where: str,
    on_line: Callable[[str], None] | None = None,
) -> BuildRoot:
    """A build root of the essential set, build-essential and ``packages`` (an upstream build's), made
    and cached as a source package's is; ``where`` names the build in errors."""
    try:
        resolution = resolve(index, [*index.essential(), *_ALWAYS, *packages], prune=frozenset())
    except ResolutionError as exc:
        raise ResolutionError(f"missing build dependency: {exc.message}", where=where) from None
    return _made(resolution.packages, fetcher, roots, where, on_line)


def _made(
    packages: tuple[PackageRecord, ...],
    fetcher: Fetcher,
    roots: Path,
    where: str,
    on_line: Callable[[str], None] | None,
) -> BuildRoot:
    listing = "".join(f"{p.name} {p.version} {p.architecture} {p.sha256}\n" for p in packages)
    digest = hashlib.sha256(f"format {_FORMAT}\n{listing}".encode()).hexdigest()
    target = roots / digest
    if (target / "var" / "lib" / "dpkg" / "status").is_file():
        return BuildRoot(target, packages, digest)
    debs = fetcher.fetch_all(
        [Download(p.url, p.sha256, p.size, p.filename) for p in packages],
        description=f"Fetching the build root of {where}",
    )
    roots.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".tmp-root-", dir=roots))
    try:
        _install(work, packages, debs, where, on_line)
        (work / "root").rename(target)
    except FileExistsError:
        pass  # another build made the same root meanwhile
    except OSError as exc:
        if not target.is_dir():
            raise InputError(f"cannot keep the build root: {exc.strerror}", where=str(target)) from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return BuildRoot(target, packages, digest)


def _install(
    work: Path,
    packages: tuple[PackageRecord, ...],
    debs: list[Path],
    label: str,
    on_line: Callable[[str], None] | None,
) -> None:
    root, incoming = work / "root", work / "debs"
    root.mkdir()
    incoming.mkdir()
    for package, path in zip(packages, debs, strict=True):
        shutil.copyfile(path, incoming / f"{package.name}.deb")
    for name in _MERGED:
        (root / name).symlink_to(f"usr/{name}")
    for name in ("usr/bin", "usr/sbin", "usr/lib", "usr/lib32", "usr/lib64", "usr/libx32", "build", "debs",
                 "var/lib/dpkg/info", "var/lib/dpkg/updates", "tmp"):  # fmt: skip
        (root / name).mkdir(parents=True, exist_ok=True)
    # debootstrap (scripts/debian-common, "first_stage"): an empty status and available file.
    (root / "var/lib/dpkg/status").write_bytes(b"")
    (root / "var/lib/dpkg/available").write_bytes(b"")
    give_to_sandbox(root)
    os.chown(incoming, *host_owner(0, 0))
    where = f"{label}: build root"
    env = {"PATH": _PATH, "LC_ALL": "C.UTF-8", "DEBIAN_FRONTEND": "noninteractive", "HOME": "/tmp"}  # noqa: S108
    names = " ".join(f"/debs/{p.name}.deb" for p in packages)
    unpack = Step(
        "unpack the build root",
        ["sh", "-c", f'set -e; for deb in {names}; do dpkg-deb -x "$deb" /target; done'],
        [Mount(Path("/usr"), "/usr"), Mount(incoming, "/debs"), Mount(root, "/target", writable=True)],
        env=env, timeout=_INSTALL_TIMEOUT, log=work / "unpack.log",
    )  # fmt: skip
    _checked(run_step(unpack, on_line), where, "unpacking the build dependencies")
    install = Step(
        "install the build root",
        ["sh", "-c", f"dpkg --force-depends --force-confold --install {names} && dpkg --configure -a"],
        [Mount(root, "/", writable=True), Mount(incoming, "/debs")],
        env=env, timeout=_INSTALL_TIMEOUT, log=work / "install.log",
    )  # fmt: skip
    _checked(run_step(install, on_line), where, "installing the build dependencies with dpkg")
    (root / "debs").rmdir()


def _checked(outcome: Outcome, where: str, what: str) -> None:
    if not outcome.ok:
        why = "timed out" if outcome.timed_out else f"failed (exit {outcome.exit_code})"
        last = outcome.tail.strip().splitlines()[-1:] or [""]
        raise InputError(f"{what} {why}: {last[0]}", where=where)
