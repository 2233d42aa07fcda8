"""Rebuilding a Debian source package: verified source → unpack → patches → changelog → build → publish.

Every step that reads the source package runs in the sandbox (``bastion.sandbox``): the ``.dsc`` and its
tarballs are untrusted input, and ``debian/rules`` is untrusted code. Unpacking and patching use the
host's ``dpkg-source`` read-only; the build runs in the build root (:mod:`._buildroot`), read-only, with
only the work directory writable at a fixed path (``/build/<source>-<upstream version>``), no network,
no ``BASTION_HOME``, ``SOURCE_DATE_EPOCH`` from the new changelog entry, ``umask 022``, ``LC_ALL=C.UTF-8``
and ``TZ=UTC`` (the reproducible-builds.org list of what varies between builds). The built ``.deb``
files are published (:mod:`._repository`) only when every step passed, and with ``check`` only when a
second build from the same inputs gave the same bytes.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bastion import _clock as clock
from bastion._progress import Progress, Silent
from bastion.cache import Cache, Fetcher
from bastion.catalog import PackageDefinition, load_package_definition
from bastion.config import Settings
from bastion.debian import Source as AptSource
from bastion.debian import (
    SourceRecord,
    debian_arch,
    debian_platform,
    fetch_source,
    find_source,
    host_sources,
    load_index,
    open_suites,
)
from bastion.errors import InputError, IntegrityError, VerificationFailed
from bastion.sandbox import Mount, Outcome, Step, host_owner, run_step
from bastion.source._buildroot import BuildRoot, prepare_build_root
from bastion.source._changelog import FACTS_COMMAND, bastion_version, changelog_entry, parse_facts
from bastion.source._proofs import BuildFacts, make_proofs, source_signer
from bastion.source._repository import LocalRepository, Published

__all__ = ["BuiltFile", "SourceBuild", "build_source", "local_repository"]

#: The most bytes a patch file may have.
MAX_PATCH_SIZE = 1 << 20
#: The most bytes one built .deb may have, and the most .deb files one build may give.
MAX_DEB_SIZE = 4 << 30
MAX_DEBS = 256
_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_STEP_TIMEOUT = 600.0
_DEB = re.compile(r"^[a-z0-9][a-z0-9+.-]*_[A-Za-z0-9.+~-]+_[a-z0-9-]+\.deb$")


@dataclass(frozen=True)
class BuiltFile:
    name: str
    sha256: str
    size: int


@dataclass(frozen=True)
class SourceBuild:
    source: SourceRecord
    version: str  # <debian version>+bastion<N>
    patches: tuple[BuiltFile, ...]
    build_root: BuildRoot
    debs: tuple[BuiltFile, ...]
    published: tuple[Published, ...]
    repository: LocalRepository
    fixes: tuple[str, ...]
    proofs: tuple[str, ...] = ()  # the provenance and VEX files kept with the repository (relative paths)


def local_repository(settings: Settings) -> LocalRepository:
    """Bastion's APT repository under ``BASTION_HOME`` and the private keyring that signs it."""
    return LocalRepository(settings.repository_dir, settings.home / "keys" / "apt")


def _sources(definition: PackageDefinition, origin: str) -> list[AptSource]:
    if not definition.repositories:
        return host_sources()
    return [
        AptSource(uri=repo.uri, suites=tuple(repo.suites), components=tuple(repo.components), origin=origin)
        for repo in definition.repositories
    ]


def _read_patches(definition: PackageDefinition, path: Path) -> list[tuple[str, bytes]]:
    base = path.parent.resolve()
    patches = []
    for number, patch in enumerate(definition.patches, start=1):
        file = (base / patch.file).resolve()
        where = f"{path}: patches[{number - 1}]"
        if not file.is_relative_to(base):
            raise InputError(f"{patch.file} leads outside the definition's directory", where=where)
        try:
            info = file.stat()
            if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_PATCH_SIZE:
                raise InputError(
                    f"{patch.file} is not a regular file of at most {MAX_PATCH_SIZE} bytes", where=where
                )
            data = file.read_bytes()
        except OSError as exc:
            raise InputError(f"cannot read {patch.file}: {exc.strerror}", where=where) from None
        patches.append((f"bastion-{number:02d}-{Path(patch.file).name}", data))
    return patches


def build_source(
    path: Path,
    settings: Settings,
    *,
    platform: str = "linux/amd64",
    check: bool = False,
    key: str | None = None,
    progress: Progress | None = None,
    on_line: Callable[[str], None] | None = None,
) -> SourceBuild:
    """Rebuild the package definition at ``path`` and publish its packages to the local repository,
    with their provenance signed by ``key`` (a key reference; else the default key, as ``bastion build``)."""
    progress = progress or Silent()
    started = clock.rfc3339()
    definition = load_package_definition(path)
    if platform not in definition.platforms:
        raise InputError(f"{platform} is not among the definition's platforms", where=str(path))
    arch = debian_arch(debian_platform(platform))
    patches = _read_patches(definition, path)
    signer = source_signer(key, settings.home, progress.warn)  # a bad key fails before any work
    keyring = path.parent / definition.keyring
    with Fetcher(Cache(settings.cache_dir), progress=progress) as fetcher:
        suites = open_suites(_sources(definition, str(path)), fetcher, keyring=keyring,
                             allow_expired=definition.allow_expired)  # fmt: skip
        record = find_source(suites, definition.source, definition.version, fetcher)
        if patches and record.format != "3.0 (quilt)":
            raise InputError(
                f"format {record.format!r} takes no quilt patches", where=f"source {record.name}"
            )
        files = fetch_source(record, fetcher)
        version = bastion_version(record.version, definition.revision)
        changes = [
            f"Apply {name}" + (f" (fixes {', '.join(p.fixes)})" if p.fixes else "")
            for (name, _), p in zip(patches, definition.patches, strict=True)
        ]
        work_base = settings.home / "work"
        work_base.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="source-", dir=work_base) as tmp:
            # The source is unpacked and patched before the build root is made: a patch that does not
            # apply fails in seconds, not after the build dependencies are installed.
            task = progress.task(f"Unpacking and patching {record.name} {record.version}")
            first = _Work(Path(tmp) / "0", record, definition, version)
            epoch = first.prepare(files, patches, changes, on_line)
            progress.finish(task)
            index = load_index(suites, arch, fetcher, settings.index_cache_dir)
            task = progress.task(f"Preparing the build root of {record.name}")
            root = prepare_build_root(record, index, fetcher, settings.cache_dir / "buildroots" / arch,
                                      on_line=on_line)  # fmt: skip
            progress.finish(task)
            task = progress.task(f"Building {record.name} {version}")
            built = first.build(root, epoch, on_line)
            progress.finish(task)
            if check:
                task = progress.task(f"Building {record.name} {version} again (--check)")
                second = _Work(Path(tmp) / "1", record, definition, version)
                again = second.build(root, second.prepare(files, patches, changes, on_line), on_line)
                progress.finish(task)
                _same(built, again, f"source {record.name} {version}: check")
            facts = BuildFacts(
                definition=path, source=record, version=version, revision=definition.revision, arch=arch,
                patches=tuple((n, hashlib.sha256(d).hexdigest()) for n, d in patches),
                build_root=root.packages, build_root_digest=root.digest,
                debs=tuple((n, built[n][0].sha256, n.split("_", 1)[0]) for n in sorted(built)),
                fixes=tuple((n, p.fixes) for (n, _), p in zip(patches, definition.patches, strict=True)),
                source_date_epoch=epoch, started_on=started, finished_on=clock.rfc3339(),
            )  # fmt: skip
            repository = local_repository(settings)
            proofs = make_proofs(facts, signer)
            published = repository.publish(record.name, [built[name][1] for name in sorted(built)], proofs)
    return SourceBuild(
        source=record, version=version,
        patches=tuple(BuiltFile(n, hashlib.sha256(d).hexdigest(), len(d)) for n, d in patches),
        build_root=root, debs=tuple(built[n][0] for n in sorted(built)), published=tuple(published),
        repository=repository, fixes=definition.fixes, proofs=tuple(sorted(proofs)),
    )  # fmt: skip


def _same(
    first: dict[str, tuple[BuiltFile, Path]], second: dict[str, tuple[BuiltFile, Path]], where: str
) -> None:
    differ = sorted(
        name
        for name in first.keys() | second.keys()
        if first.get(name, (None,))[0] != second.get(name, (None,))[0]
    )
    if differ:
        raise VerificationFailed(f"not reproducible: a second build gave other bytes for {', '.join(differ)}",
                                 where=where)  # fmt: skip


class _Work:
    """One build's directory: ``in`` (the source files, patches and changelog entry, read-only in the
    sandbox) and ``build`` (mounted at /build, the only place a step may write)."""

    def __init__(self, work: Path, record: SourceRecord, definition: PackageDefinition, version: str) -> None:
        self.work = work
        self.record = record
        self.definition = definition
        self.label = f"source {record.name} {version}"
        self.version = version
        upstream = record.version.split(":", 1)[-1].rsplit("-", 1)[0]
        self.directory = f"{record.name}-{upstream}"
        self.inputs, self.out = work / "in", work / "build"
        self.env = {"PATH": _PATH, "LC_ALL": "C.UTF-8", "TZ": "UTC", "HOME": "/tmp"}  # noqa: S108

    def prepare(
        self,
        files: dict[str, Path],
        patches: list[tuple[str, bytes]],
        changes: list[str],
        on_line: Callable[[str], None] | None,
    ) -> int:
        """Unpack the source, add the patches and the changelog entry; returns SOURCE_DATE_EPOCH."""
        inputs, out, directory = self.inputs, self.out, self.directory
        (inputs / "src").mkdir(parents=True)
        (inputs / "patches").mkdir()
        for name, cached in files.items():
            shutil.copyfile(cached, inputs / "src" / name)
        for name, data in patches:
            (inputs / "patches" / name).write_bytes(data)
        out.mkdir()
        os.chown(out, *host_owner(0, 0))
        host = [Mount(Path("/usr"), "/usr"), Mount(inputs, "/in"), Mount(out, "/build", writable=True)]
        unpack = Step(
            "unpack",
            ["sh", "-c", f'umask 022; dpkg-source --no-check -x "/in/src/{self.record.dsc.name}" "/build/{directory}" '
                         f'&& cd "/build/{directory}" && {FACTS_COMMAND}'],
            host, env=self.env, timeout=_STEP_TIMEOUT, log=self.work / "unpack.log",
        )  # fmt: skip
        outcome = run_step(unpack, on_line)
        _require(outcome, f"{self.label}: unpack", "dpkg-source -x failed")
        facts = parse_facts(outcome.tail.splitlines(), where=f"{self.label}: unpack")
        entry = changelog_entry(self.record.name, self.version, facts, self.definition.reason, changes)
        (inputs / "changelog-entry").write_text(entry)
        # Each patch becomes the next quilt patch and is applied at once by dpkg-source --before-build,
        # so a patch that does not apply is named by the exit status (100 + its number).
        script = ["set -e", "umask 022", f'cd "/build/{directory}"', "mkdir -p debian/patches",
                  "touch debian/patches/series"]  # fmt: skip
        for number, (name, _) in enumerate(patches, start=1):
            # dpkg-source --before-build takes a next patch that does not apply for one already applied
            # (Dpkg::Source::Package::V3::Quilt check_patches_applied), so each is tried first with
            # patch(1) as dpkg-source applies it (no fuzz), and its quilt record checked after.
            script += [
                f'cp "/in/patches/{name}" debian/patches/ && echo "{name}" >> debian/patches/series',
                f'patch -p1 -f -F 0 --dry-run -s -r - < "debian/patches/{name}" || exit {100 + number}',
                f'dpkg-source --before-build . && grep -qx "{name}" .pc/applied-patches || exit {100 + number}',
            ]
        script += ["cat /in/changelog-entry debian/changelog > debian/changelog.new",
                   "mv debian/changelog.new debian/changelog"]  # fmt: skip
        step = Step("patch", ["sh", "-c", "\n".join(script)], host, env=self.env, timeout=_STEP_TIMEOUT,
                    log=self.work / "patch.log")  # fmt: skip
        outcome = run_step(step, on_line)
        if outcome.exit_code is not None and 100 < outcome.exit_code <= 100 + len(patches):
            name = self.definition.patches[outcome.exit_code - 101].file
            raise InputError(f"patch {name} does not apply: {_last(outcome)}", where=f"{self.label}: patch")
        _require(outcome, f"{self.label}: patch", "adding the patches and the changelog entry failed")
        return facts.timestamp

    def build(
        self, root: BuildRoot, epoch: int, on_line: Callable[[str], None] | None
    ) -> dict[str, tuple[BuiltFile, Path]]:
        """``dpkg-buildpackage -b`` in the build root (read-only), then the .deb files it left."""
        build = Step(
            "build",
            ["sh", "-c", f'umask 022; cd "/build/{self.directory}" && exec dpkg-buildpackage -b -us -uc'],
            [Mount(root.path, "/"), Mount(self.out, "/build", writable=True)],
            env={**self.env, "LANG": "C.UTF-8", "SOURCE_DATE_EPOCH": str(epoch)},
            workdir="/build", timeout=float(self.definition.timeout), log=self.work / "build.log",
        )  # fmt: skip
        outcome = run_step(build, on_line)
        if not outcome.ok and not outcome.timed_out:
            _diagnose_build(self.work / "build.log", f"{self.label}: build")
        _require(outcome, f"{self.label}: build", "dpkg-buildpackage failed")
        return _collect(self.out, self.label)


#: What a failed step prints when it tried the network: the sandbox has only loopback, so a connection
#: elsewhere fails with ENETUNREACH, and a name lookup (no resolver reachable) with getaddrinfo's
#: EAI_AGAIN / EAI_NONAME / EAI_NODATA texts, or the words curl, wget and git use for them.
_NETWORK = re.compile(
    r"Network is unreachable|Temporary failure in name resolution|Name or service not known"
    r"|No address associated with hostname|Could not resolve host|unable to resolve host address"
)
#: dpkg-checkbuilddeps(1), which dpkg-buildpackage runs first, on what debian/control asks for.
_UNMET = re.compile(r"dpkg-checkbuilddeps: error: (Unmet build dependencies|Build conflicts): (.+)")
#: The most bytes of a failed build's log read back to say why it failed (the end of it).
_LOG_READ = 4 << 20


def _diagnose_build(log: Path, where: str) -> None:
    """Name the two failures a build log shows plainly: build dependencies debian/control asks for that
    the build root lacks (it was made from the ``Sources`` index's ``Build-Depends``: a patch that adds
    one to debian/control is the usual cause), and an attempt to reach the network."""
    try:
        with log.open("rb") as stream:
            stream.seek(max(0, log.stat().st_size - _LOG_READ))
            text = stream.read(_LOG_READ).decode("utf-8", "replace")
    except OSError:
        return
    if unmet := _UNMET.search(text):
        what = "missing build dependencies" if unmet.group(1).startswith("Unmet") else "build conflicts"
        raise InputError(
            f"{what}: {_printable(unmet.group(2))} (debian/control asks for them; the build root has what "
            "the signed Sources index's Build-Depends lists)",
            where=where,
        )
    for line in reversed(text.splitlines()):
        if _NETWORK.search(line):
            raise InputError(
                f"the build tried to reach the network, which the sandbox does not have: {_printable(line)}",
                where=where,
                hint="a build must use only its source and the build root; vendor what it downloads",
            )


def _printable(text: str) -> str:
    """One line of a build's output, fit for a diagnostic: printable characters only, at most 300."""
    return "".join(c if c.isprintable() else "?" for c in text.strip())[:300]


def _last(outcome: Outcome) -> str:
    lines = [line for line in outcome.tail.splitlines() if line.strip()]
    return lines[-1].strip()[:300] if lines else "no output"


def _require(outcome: Outcome, where: str, what: str) -> None:
    if outcome.timed_out:
        raise InputError(f"{what}: timed out after {outcome.seconds:.0f}s and was killed", where=where)
    if not outcome.ok:
        raise InputError(f"{what} (exit {outcome.exit_code}): {_last(outcome)}", where=where)


def _collect(out: Path, label: str) -> dict[str, tuple[BuiltFile, Path]]:
    """The .deb files the build left at the top of its directory, each a regular file read without
    following links (the build could have left anything there)."""
    found: dict[str, tuple[BuiltFile, Path]] = {}
    for entry in sorted(os.scandir(out), key=lambda e: e.name):
        if not entry.name.endswith(".deb"):
            continue
        if not _DEB.match(entry.name) or not entry.is_file(follow_symlinks=False):
            raise IntegrityError(
                f"the build left {entry.name!r}, not a plain .deb file", where=f"{label}: build"
            )
        if len(found) >= MAX_DEBS or entry.stat(follow_symlinks=False).st_size > MAX_DEB_SIZE:
            raise IntegrityError("the build left too many or too large .deb files", where=f"{label}: build")
        fd = os.open(entry.path, os.O_RDONLY | os.O_NOFOLLOW)
        digest = hashlib.sha256()
        with os.fdopen(fd, "rb") as stream:
            while chunk := stream.read(1 << 20):
                digest.update(chunk)
        found[entry.name] = (BuiltFile(entry.name, digest.hexdigest(), entry.stat(follow_symlinks=False).st_size),
                             Path(entry.path))  # fmt: skip
    if not found:
        raise InputError("the build gave no .deb file", where=f"{label}: build")
    return found
