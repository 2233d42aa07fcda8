"""Upstream build pipelines (a definition's ``builds:``) and files from other images (``artifacts:``).

Each build step is: a verified source tarball → a build root → the step's commands in the sandbox →
the outputs it names, copied into every variant of the image.

* **Source**, verified before anything reads it: a URL whose bytes must have the declared SHA256; or a
  URL with a detached OpenPGP signature that ``gpgv`` checks against a keyring in the repository; or a
  Debian source package's upstream tarball through the verified chain (``Sources`` via InRelease, the
  file by SHA256 and size: :func:`bastion.debian.find_source`, :func:`bastion.debian.fetch_source`).
* **Build root**: made from verified Debian packages exactly as source builds make theirs
  (:func:`bastion.source.prepare_package_root`: essential, build-essential and the step's
  ``packages``, installed with dpkg in the sandbox, cached by the digest of the package set). This rather
  than a dev image from the store: a dev image is assembled without maintainer scripts, so compilers'
  alternatives and dpkg's own state would be missing, while this root is configured and each of its
  packages is named by SHA256 in the provenance, as the image's own packages are.
* **Commands** run with ``bastion.sandbox.run_step``: the root read-only, the source read-only at
  ``/in``, ``/build`` the only writable place (the source unpacked in ``/build/src``, ``/build/out``
  empty for installs), no network, unprivileged host ids, a process limit, the step's timeout.
* **Outputs** are read back without following links (a build could leave a link to a host file), each a
  regular file inside ``/build``, bounded in number and size.

A build's outputs are kept under ``cache/builds/<sha256 of its inputs>`` (the source's SHA256, how it
is unpacked, the build root's package set, the commands and environment, the output paths, the
platform), so an unchanged build is not run again.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from packageurl import PackageURL

from bastion._progress import Progress, Silent
from bastion.cache import Download, Fetcher
from bastion.catalog import Artifact, BuildStep, Definition
from bastion.config import Settings
from bastion.debian import (
    PackageIndex,
    Source,
    Suite,
    debian_arch,
    debian_platform,
    fetch_source,
    find_source,
    host_sources,
    load_index,
    open_suites,
)
from bastion.documents import load_json
from bastion.errors import InputError, IntegrityError, InternalError, NetworkError, VerificationFailed
from bastion.oci import canonical_json, host_platform
from bastion.sandbox import Mount, Outcome, Step, host_owner, run_step
from bastion.source._buildroot import BuildRoot, prepare_package_root

__all__ = ["Upstream", "UpstreamComponent", "UpstreamFile", "UpstreamInput", "build_upstream"]

#: The most bytes a source tarball, a signature, one build's outputs together and one artifact file may have.
MAX_SOURCE_SIZE = 2 << 30
MAX_SIGNATURE_SIZE = 64 << 10
MAX_OUTPUT_SIZE = 1 << 30
MAX_OUTPUTS = 1024
# Bump when what a cached build holds, or how a build is run, changes.
_FORMAT = 1
_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_UNPACK_TIMEOUT = 600.0


@dataclass(frozen=True)
class UpstreamFile:
    path: str  # absolute, in the image
    data: bytes
    mode: int
    uid: int
    gid: int
    origin: str  # where its bytes came from, for the SBOM's file entry


@dataclass(frozen=True)
class UpstreamComponent:
    """What the SBOM lists for one build or artifact."""

    name: str
    version: str
    purl: str  # pkg:generic/<project>@<version>?checksum=...&download_url=... (or pkg:oci for an artifact)
    download_location: str
    sha256: str  # of the source tarball (or the artifact image's manifest)
    files: tuple[str, ...]
    origin: str


@dataclass(frozen=True)
class UpstreamInput:
    """Something a build read, by SHA256: listed in the image's provenance."""

    uri: str
    sha256: str
    name: str | None


@dataclass(frozen=True)
class Upstream:
    files: tuple[UpstreamFile, ...] = ()
    components: tuple[UpstreamComponent, ...] = ()
    inputs: tuple[UpstreamInput, ...] = ()
    cached: tuple[str, ...] = ()  # the steps whose outputs came from the build cache

    @property
    def digest(self) -> str:
        """The SHA256 of what goes into the image (part of the image's recipe)."""
        listing = [
            (f.path, hashlib.sha256(f.data).hexdigest(), f.mode, f.uid, f.gid, f.origin) for f in self.files
        ]
        return hashlib.sha256(canonical_json([listing, [c.purl for c in self.components]])).hexdigest()


def build_upstream(
    definition: Definition,
    settings: Settings,
    fetcher: Fetcher,
    platform: str,
    *,
    progress: Progress | None = None,
    on_line: Callable[[str], None] | None = None,
) -> Upstream:
    """Run (or take from the cache) every build step of ``definition`` for ``platform``, and read its
    artifacts; nothing is written outside the cache."""
    if not definition.builds and not definition.artifacts:
        return Upstream()
    progress = progress or Silent()
    files: list[UpstreamFile] = []
    components: list[UpstreamComponent] = []
    inputs: list[UpstreamInput] = []
    cached: list[str] = []
    if definition.builds:
        _require_host(definition, platform)
        suites = _suites(definition, fetcher)
        index = load_index(suites, debian_arch(debian_platform(platform)), fetcher, settings.index_cache_dir)
        for step in definition.builds:
            run = _Build(definition, step, settings, fetcher, suites, index, platform)
            made, hit = run.outputs(progress, on_line)
            files += made
            components.append(run.component(made))
            inputs += run.inputs()
            if hit:
                cached.append(step.name)
    for artifact in definition.artifacts:
        made, component = _artifact(definition, artifact, settings, platform)
        files += made
        components.append(component)
        inputs.append(UpstreamInput(artifact.image, component.sha256, artifact.name))
    seen: set[str] = set()
    for item in files:
        if item.path in seen:
            raise InputError(f"{item.path} is given by two builds or artifacts", where=str(definition.path))
        seen.add(item.path)
    return Upstream(tuple(files), tuple(components), tuple(inputs), tuple(cached))


def _require_host(definition: Definition, platform: str) -> None:
    host = debian_platform(str(host_platform()))
    if debian_platform(platform) != host:
        raise InputError(
            f"builds run natively, on the host's platform {host}: {platform} cannot be built here "
            "(no cross-building or emulation)",
            where=str(definition.path),
        )


def _suites(definition: Definition, fetcher: Fetcher) -> list[Suite]:
    contents = definition.contents
    sources = (
        [Source(uri=r.uri, suites=tuple(r.suites), components=tuple(r.components), origin=str(definition.path))
         for r in contents.repositories]
        if contents.repositories else host_sources()
    )  # fmt: skip
    return open_suites(sources, fetcher, keyring=definition.resolve_file(contents.keyring),
                       allow_expired=contents.allow_expired)  # fmt: skip


@dataclass(frozen=True)
class _Source:
    url: str
    sha256: str
    name: str  # the tarball's file name
    path: Path | None  # already fetched and verified (a signed or Debian source); else fetched on a miss


class _Build:
    """One build step: its verified inputs, its cache key, and running it on a miss."""

    def __init__(
        self,
        definition: Definition,
        step: BuildStep,
        settings: Settings,
        fetcher: Fetcher,
        suites: list[Suite],
        index: PackageIndex,
        platform: str,
    ) -> None:
        self.definition, self.step, self.settings, self.fetcher = definition, step, settings, fetcher
        self.where = f"{definition.path}: build {step.name}"
        self.source = self._source(suites)
        self.root: BuildRoot = prepare_package_root(
            step.packages, index, fetcher, settings.cache_dir / "buildroots" / index.architecture,
            where=self.where,
        )  # fmt: skip
        self.epoch = definition.source_date_epoch or 0
        recipe = {
            "format": _FORMAT, "platform": platform, "source": self.source.sha256, "strip": step.source.strip,
            "build-root": self.root.digest, "commands": list(step.commands), "environment": step.environment,
            "outputs": sorted({o.path for o in step.outputs}), "epoch": self.epoch,
        }  # fmt: skip
        self.key = hashlib.sha256(canonical_json(recipe)).hexdigest()

    def _source(self, suites: list[Suite]) -> _Source:
        spec, where = self.step.source, f"{self.where}: source"
        if spec.debian is not None:
            record = find_source(suites, spec.debian.source, spec.debian.version, self.fetcher)
            tarballs = [f for f in record.files if ".orig.tar." in f.name and not f.name.endswith(".asc")]
            tarballs = tarballs or [
                f for f in record.files if ".tar." in f.name and not f.name.endswith(".asc")
            ]
            if len(tarballs) != 1:
                raise InputError(f"source {record.name} {record.version} has no single upstream tarball",
                                 where=where)  # fmt: skip
            paths = fetch_source(record, self.fetcher)
            tarball = tarballs[0]
            return _Source(record.url(tarball), tarball.sha256, tarball.name, paths[tarball.name])
        url = spec.url or ""
        name = url.rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0] or "source"
        if spec.sha256 is not None:
            return _Source(url, spec.sha256, name, None)
        # A signed source: its digest is known only once it is fetched and its signature verified.
        keyring = self._keyring()
        signature = _download(url=spec.signature or "", limit=MAX_SIGNATURE_SIZE, where=f"{where}: signature")
        data = _download(url=url, limit=MAX_SOURCE_SIZE, where=where)
        _verify_signature(data, signature, keyring, where)
        sha256 = hashlib.sha256(data).hexdigest()
        path = self.fetcher.cache.put_bytes(data, sha256, where=where)
        return _Source(url, sha256, name, path)

    def _keyring(self) -> Path:
        base = self.definition.path.parent.resolve()
        keyring = (base / (self.step.source.keyring or "")).resolve()
        if not keyring.is_relative_to(base) or not keyring.is_file():
            raise InputError(f"keyring {self.step.source.keyring} is not a file in the definition's directory",
                             where=f"{self.where}: source")  # fmt: skip
        return keyring

    def inputs(self) -> list[UpstreamInput]:
        found = [UpstreamInput(self.source.url, self.source.sha256, self.step.project_name)]
        return found + [UpstreamInput(p.url, p.sha256, p.name) for p in self.root.packages]

    def component(self, files: Sequence[UpstreamFile]) -> UpstreamComponent:
        name, version = self.step.project_name, self.step.version
        # package-url spec (PURL-TYPES, "generic"): download_url and checksum qualifiers.
        purl = PackageURL("generic", None, name, version,
                          {"download_url": self.source.url, "checksum": f"sha256:{self.source.sha256}"})  # fmt: skip
        return UpstreamComponent(
            name, version, purl.to_string(), self.source.url, self.source.sha256,
            tuple(f.path for f in files), f"built by Bastion from {self.source.url} (build {self.step.name})",
        )  # fmt: skip

    def outputs(
        self, progress: Progress, on_line: Callable[[str], None] | None
    ) -> tuple[list[UpstreamFile], bool]:
        """The step's outputs: from the build cache, else built now and kept there."""
        kept = self.settings.cache_dir / "builds" / self.key
        if (found := self._read_kept(kept)) is not None:
            return found, True
        source = self.source.path
        if source is None:
            item = Download(self.source.url, self.source.sha256, MAX_SOURCE_SIZE, f"{self.where}: source")
            source = _fetch_checked(self.fetcher, item, self.source.url)
        task = progress.task(f"Building {self.step.project_name} {self.step.version} ({self.step.name})")
        base = self.settings.home / "work"
        base.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="upstream-", dir=base) as tmp:
            work = Path(tmp)
            built = self._run(work, source, on_line)
            _keep(kept, built)
        progress.finish(task)
        found = self._read_kept(kept)
        if found is None:
            raise InternalError(f"the build cache lost {kept} as it was written", where=self.where)
        return found, False

    def _run(self, work: Path, source: Path, on_line: Callable[[str], None] | None) -> dict[str, bytes]:
        # The build root has /build (and nothing else) to mount on; the verified tarball is put there.
        out = work / "build"
        out.mkdir()
        shutil.copyfile(source, out / "source.tar")
        os.chown(out, *host_owner(0, 0))
        env = {"PATH": _PATH, "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8", "TZ": "UTC", "HOME": "/tmp",  # noqa: S108
               "SOURCE_DATE_EPOCH": str(self.epoch)}  # fmt: skip
        mounts = [Mount(self.root.path, "/"), Mount(out, "/build", writable=True)]
        unpack = Step(
            "unpack", ["sh", "-c", "set -e; umask 022; mkdir /build/src /build/out; tar -x --no-same-owner "
                       f"-f /build/source.tar -C /build/src --strip-components={self.step.source.strip}; "
                       "rm /build/source.tar"],
            mounts, env=env, workdir="/build", timeout=_UNPACK_TIMEOUT, log=work / "unpack.log",
        )  # fmt: skip
        _require(run_step(unpack, on_line), f"{self.where}: unpack", "unpacking the source failed")
        script = "\n".join(["set -e", "umask 022", *self.step.commands])
        build = Step(
            "build", ["sh", "-c", script], mounts, env={**env, **self.step.environment}, workdir="/build/src",
            timeout=float(self.step.timeout), log=work / "build.log",
        )  # fmt: skip
        _require(run_step(build, on_line), f"{self.where}: commands", "the build commands failed")
        return {
            path: _read_beneath(out, path, f"{self.where}: outputs")
            for path in {o.path for o in self.step.outputs}
        }

    def _read_kept(self, kept: Path) -> list[UpstreamFile] | None:
        listing = kept / "outputs.json"
        if not listing.is_file():
            return None
        recorded = load_json(listing.read_bytes(), where=str(listing), max_bytes=1 << 20)
        made = []
        for output in self.step.outputs:
            entry = recorded.get(output.path) if isinstance(recorded, dict) else None
            if not isinstance(entry, str):
                return None
            data = (kept / "files" / entry).read_bytes()
            if hashlib.sha256(data).hexdigest() != entry:
                return None  # damaged: built again
            made.append(
                UpstreamFile(output.to, data, int(output.mode, 8), output.uid, output.gid,
                             f"build {self.step.name}: {output.path}, compiled from {self.source.url} "
                             f"(sha256 {self.source.sha256})")
            )  # fmt: skip
        return made


def _require(outcome: Outcome, where: str, what: str) -> None:
    if outcome.timed_out:
        raise InputError(f"{what}: timed out after {outcome.seconds:.0f}s and was killed", where=where)
    if not outcome.ok:
        lines = [line.strip() for line in outcome.tail.splitlines() if line.strip()]
        raise InputError(f"{what} (exit {outcome.exit_code}): {lines[-1][:300] if lines else 'no output'}",
                         where=where)  # fmt: skip


def _read_beneath(root: Path, relative: str, where: str) -> bytes:
    """The regular file ``relative`` inside ``root``, opened one component at a time without following a
    link, so a build cannot hand over a host file by leaving a symlink to it."""
    parts = relative.split("/")
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in parts[:-1]:
            try:
                next_fd = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            except OSError:
                raise InputError(f"output {relative} is missing: {part} is no directory in the build tree",
                                 where=where) from None  # fmt: skip
            os.close(fd)
            fd = next_fd
        try:
            file_fd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=fd)
        except OSError as exc:
            what = "a symbolic link, not a regular file" if exc.errno == errno.ELOOP else "missing"
            raise InputError(f"output {relative} is {what}", where=where) from None
        with os.fdopen(file_fd, "rb") as stream:
            info = os.fstat(stream.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise InputError(f"output {relative} is not a regular file", where=where)
            if info.st_size > MAX_OUTPUT_SIZE:
                raise InputError(f"output {relative} is larger than {MAX_OUTPUT_SIZE} bytes", where=where)
            return stream.read(MAX_OUTPUT_SIZE + 1)
    finally:
        os.close(fd)


def _keep(kept: Path, built: dict[str, bytes]) -> None:
    """The outputs under ``cache/builds/<key>``, renamed into place whole."""
    if sum(len(d) for d in built.values()) > MAX_OUTPUT_SIZE or len(built) > MAX_OUTPUTS:
        raise InputError(
            f"the outputs exceed {MAX_OUTPUTS} files or {MAX_OUTPUT_SIZE} bytes", where=str(kept)
        )
    kept.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".tmp-", dir=kept.parent))
    try:
        (staging / "files").mkdir()
        listing = {}
        for path, data in built.items():
            digest = hashlib.sha256(data).hexdigest()
            (staging / "files" / digest).write_bytes(data)
            listing[path] = digest
        (staging / "outputs.json").write_bytes(canonical_json(listing))
        staging.rename(kept)
    except OSError:
        if not (kept / "outputs.json").is_file():
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _fetch_checked(fetcher: Fetcher, item: Download, url: str) -> Path:
    """The source from the cache, else downloaded (at most :data:`MAX_SOURCE_SIZE` bytes) and checked
    against the definition's SHA256 before it enters the cache."""
    if (found := fetcher.cache.lookup(item.sha256)) is not None:
        return found
    data = _download(url=url, limit=MAX_SOURCE_SIZE, where=item.label)
    actual = hashlib.sha256(data).hexdigest()
    if actual != item.sha256:
        raise IntegrityError(f"{url} has SHA256 {actual}, not the {item.sha256} the definition gives",
                             where=item.label)  # fmt: skip
    return fetcher.cache.put_bytes(data, item.sha256, where=item.label)


def _download(*, url: str, limit: int, where: str) -> bytes:
    """At most ``limit`` bytes from ``url`` (refused beyond it); the caller verifies them."""
    import httpx

    chunks, size = [], 0
    try:
        with (
            httpx.Client(timeout=60.0, follow_redirects=True) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code != 200:
                raise NetworkError(f"{url} answered HTTP {response.status_code}", where=where)
            for chunk in response.iter_bytes(1 << 20):
                size += len(chunk)
                if size > limit:
                    raise InputError(f"{url} is larger than {limit} bytes", where=where)
                chunks.append(chunk)
    except httpx.HTTPError as exc:
        raise NetworkError(f"cannot download {url}: {exc}", where=where) from None
    return b"".join(chunks)


def _verify_signature(data: bytes, signature: bytes, keyring: Path, where: str) -> None:
    """gpgv(1), as apt verifies archives: a detached signature by a key of ``keyring``."""
    gpgv = shutil.which("gpgv")
    if gpgv is None:
        raise InternalError("gpgv is not installed", hint="apt-get install gpgv")
    with tempfile.TemporaryDirectory(prefix="bastion-gpgv-") as tmp:
        (Path(tmp) / "data").write_bytes(data)
        (Path(tmp) / "data.sig").write_bytes(signature)
        proc = subprocess.run(
            [gpgv, "--status-fd", "1", "--keyring", str(keyring), str(Path(tmp) / "data.sig"), str(Path(tmp) / "data")],
            capture_output=True, check=False, timeout=60,
        )  # fmt: skip
    status = proc.stdout.decode("utf-8", "replace").splitlines()
    if proc.returncode != 0 or not any(line.startswith("[GNUPG:] VALIDSIG ") for line in status):
        raise VerificationFailed(
            f"the signature does not verify with the keyring {keyring.name} (gpgv exit {proc.returncode})",
            where=f"{where}: signature",
        )


def _artifact(
    definition: Definition, artifact: Artifact, settings: Settings, platform: str
) -> tuple[list[UpstreamFile], UpstreamComponent]:
    """The files ``artifact`` takes from its image, which must be the one its digest names."""
    from bastion.image import FileKind, open_target

    where = f"{definition.path}: artifact {artifact.name}"
    pinned = artifact.image.rsplit("@", 1)[1]
    with open_target(artifact.image, settings, platform=platform) as target:
        if pinned not in (target.manifest_digest, target.index_digest):
            raise VerificationFailed(f"{artifact.image} opened as {target.manifest_digest}, not {pinned}",
                                     where=where)  # fmt: skip
        files = []
        for item in artifact.files:
            info = target.files.get(item.path)
            if info is None or info.kind is not FileKind.FILE:
                raise InputError(f"{item.path} is no regular file in {artifact.image}", where=where)
            if info.size > MAX_OUTPUT_SIZE or target.contents is None:
                raise InputError(f"{item.path} is larger than {MAX_OUTPUT_SIZE} bytes", where=where)
            data = target.contents.read(item.path, MAX_OUTPUT_SIZE)
            mode = int(item.mode, 8) if item.mode is not None else info.mode & 0o7777
            origin = f"artifact {artifact.name}: {item.path} of {artifact.image}"
            files.append(UpstreamFile(item.to or item.path, data, mode, item.uid, item.gid, origin))
        name = (
            artifact.image.rsplit("@", 1)[0].rstrip("/").rsplit("/", 1)[-1].split(":", 1)[0] or artifact.name
        )
        digest = pinned.removeprefix("sha256:")
        purl = PackageURL("oci", None, name.lower(), pinned, {"arch": platform.split("/")[1]}).to_string()
    component = UpstreamComponent(name, pinned, purl, artifact.image, digest, tuple(f.path for f in files),
                                  f"copied from {artifact.image}")  # fmt: skip
    return files, component
