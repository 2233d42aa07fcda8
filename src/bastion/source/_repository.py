"""Bastion's own APT repository: the packages it built, published through the same trust chain as Debian's.

Laid out as the Debian Repository Format describes a suite, under ``BASTION_HOME/repository``::

    pool/main/<letter>/<source>/<package>_<version>_<arch>.deb
    dists/bastion/main/binary-<arch>/Packages, Packages.gz
    dists/bastion/Release, InRelease       # InRelease: Release clearsigned by Bastion's archive key
    provenance/<source>/<version>_<arch>.sigstore.json   # each build's signed SLSA provenance
    vex/<source>_<version>_<arch>.openvex.json           # what its patches fix (OpenVEX ``fixed``)
    bastion-archive-keyring.gpg, .asc      # the public key, for gpgv, apt's Signed-By and definitions

The key is an OpenPGP key made with ``gpg`` in a private ``GNUPGHOME`` (``BASTION_HOME/keys/apt``,
mode 0700), never seen by a build's sandbox. A definition consumes the packages with
``contents.bastion-repository: true`` (its InRelease verified with the published keyring only):
InRelease → Packages → .deb, as for Debian's archive.

Publishing is atomic: pool files are added under new names only (a name already published with other
bytes is refused), and the suite's indices are written to a fresh directory that a symbolic link,
replaced by rename(2), then points at; a reader sees the old suite or the new one. One publisher at a
time (a lock file).
"""

from __future__ import annotations

import fcntl
import gzip
import hashlib
import shutil
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from email.utils import format_datetime
from pathlib import Path

from bastion import _clock as clock
from bastion._atomic import atomic_path, atomic_write
from bastion.config import REPOSITORY_COMPONENT, REPOSITORY_KEYRING, REPOSITORY_SUITE
from bastion.debian import read_control
from bastion.errors import EnvironmentProblem, InputError, InternalError

__all__ = ["SUITE", "LocalRepository"]

SUITE = REPOSITORY_SUITE
_COMPONENT = REPOSITORY_COMPONENT
_KEY_USER = "Bastion APT repository <apt@bastion.invalid>"
_KEYRING = REPOSITORY_KEYRING


@dataclass(frozen=True)
class Published:
    name: str  # the .deb's file name
    path: Path  # in the pool
    sha256: str


class LocalRepository:
    """The repository under ``root`` (``BASTION_HOME/repository``), signed with the key in ``gnupghome``."""

    def __init__(self, root: Path, gnupghome: Path) -> None:
        self.root = root
        self.gnupghome = gnupghome

    @property
    def keyring(self) -> Path:
        """The published public key (binary OpenPGP), what ``gpgv --keyring`` and definitions name."""
        return self.root / _KEYRING

    @property
    def uri(self) -> str:
        return self.root.resolve().as_uri()

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / ".lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def publish(
        self, source: str, debs: Sequence[Path], proofs: Mapping[str, bytes] | None = None
    ) -> list[Published]:
        """Add ``debs`` (built from ``source``) to the pool and publish the suite again, signed; ``proofs``
        (path under the repository → bytes: the build's provenance and VEX, :mod:`._proofs`) are
        written before the suite is switched, so a published package always has them."""
        with self._locked():
            fingerprint = self._key()
            directory = (
                self.root
                / "pool"
                / _COMPONENT
                / (source[:4] if source.startswith("lib") else source[0])
                / source
            )
            directory.mkdir(parents=True, exist_ok=True)
            published = []
            for deb in debs:
                data = deb.read_bytes()
                digest = hashlib.sha256(data).hexdigest()
                target = directory / deb.name
                if target.exists():
                    if hashlib.sha256(target.read_bytes()).hexdigest() != digest:
                        raise InputError(
                            f"{deb.name} is already published with other bytes",
                            where=f"source {source}: publish",
                            hint="a changed build needs a new revision",
                        )
                else:
                    atomic_write(target, data)
                published.append(Published(deb.name, target, digest))
            for name, data in sorted((proofs or {}).items()):
                proof = self.root / name
                if name.startswith(("pool/", "dists/")) or not proof.resolve().is_relative_to(
                    self.root.resolve()
                ):
                    raise InternalError(f"a proof may not be written to {name}")
                proof.parent.mkdir(parents=True, exist_ok=True)
                atomic_write(proof, data)
            self._write_suite(fingerprint)
            return published

    def _write_suite(self, fingerprint: str) -> None:
        by_arch: dict[str, list[str]] = {}
        for deb in sorted((self.root / "pool").rglob("*.deb")):
            control = read_control(deb).decode("utf-8").rstrip("\n")
            data = deb.read_bytes()
            stanza = (
                f"{control}\nFilename: {deb.relative_to(self.root).as_posix()}\nSize: {len(data)}\n"
                f"SHA256: {hashlib.sha256(data).hexdigest()}\n"
            )
            arch = next(
                (
                    line.split(":", 1)[1].strip()
                    for line in control.splitlines()
                    if line.startswith("Architecture:")
                ),
                "all",
            )
            by_arch.setdefault(arch, []).append(stanza)
        arches = sorted({a for a in by_arch if a != "all"} or {"amd64"})
        dists = self.root / "dists"
        dists.mkdir(parents=True, exist_ok=True)
        files: dict[str, bytes] = {}
        for arch in arches:
            text = "\n".join(by_arch.get(arch, []) + by_arch.get("all", [])).encode("utf-8")
            files[f"{_COMPONENT}/binary-{arch}/Packages"] = text
            # gzip with no name and mtime 0 (RFC 1952 2.3.1): the same index gives the same bytes.
            files[f"{_COMPONENT}/binary-{arch}/Packages.gz"] = gzip.compress(text, mtime=0)
        sums = "".join(
            f" {hashlib.sha256(data).hexdigest()} {len(data):>8} {name}\n"
            for name, data in sorted(files.items())
        )
        # Debian Repository Format, "Release files": Suite/Codename, Date, Architectures, Components and
        # the SHA256 of each index.
        release = (
            f"Origin: Bastion\nLabel: Bastion\nSuite: {SUITE}\nCodename: {SUITE}\n"
            f"Date: {format_datetime(clock.now(), usegmt=True)}\nArchitectures: {' '.join(arches)}\n"
            f"Components: {_COMPONENT}\nDescription: Packages Bastion built from source\nSHA256:\n{sums}"
        ).encode()
        files["Release"] = release
        files["InRelease"] = self._clearsign(release, fingerprint)
        version = hashlib.sha256(b"".join(files[name] for name in sorted(files))).hexdigest()[:16]
        fresh = dists / f".{SUITE}-{version}"
        if not fresh.is_dir():
            staging = dists / f".tmp-{version}"
            shutil.rmtree(staging, ignore_errors=True)
            for name, data in files.items():
                (staging / name).parent.mkdir(parents=True, exist_ok=True)
                (staging / name).write_bytes(data)
            staging.rename(fresh)
        link = dists / SUITE
        with atomic_path(link, durable=False) as tmp:
            tmp.unlink()
            tmp.symlink_to(fresh.name)
        for old in dists.glob(f".{SUITE}-*"):
            if old != fresh:
                shutil.rmtree(old, ignore_errors=True)

    def _gpg(self, *args: str, data: bytes | None = None) -> bytes:
        gpg = shutil.which("gpg")
        if gpg is None:
            raise EnvironmentProblem(
                "gpg is not installed: it signs Bastion's APT repository", hint="apt-get install gpg"
            )
        proc = subprocess.run(
            [gpg, "--homedir", str(self.gnupghome), "--batch", "--no-tty", "--quiet", *args],
            input=data, capture_output=True, check=False, timeout=120,
        )  # fmt: skip
        if proc.returncode != 0:
            error = proc.stderr.decode("utf-8", "replace").strip().splitlines()
            raise InternalError(f"gpg {args[0]} failed: {error[-1] if error else proc.returncode}")
        return proc.stdout

    def _key(self) -> str:
        """The archive key's fingerprint, made on first use; the public key is published beside the suite."""
        self.gnupghome.mkdir(parents=True, exist_ok=True)
        self.gnupghome.chmod(0o700)
        listing = self._gpg("--with-colons", "--list-secret-keys").decode()
        fingerprints = [line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:")]
        if not fingerprints:
            self._gpg("--passphrase", "", "--quick-gen-key", _KEY_USER, "ed25519", "sign", "never")
            listing = self._gpg("--with-colons", "--list-secret-keys").decode()
            fingerprints = [line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:")]
        fingerprint = fingerprints[0]
        public = self._gpg("--export", fingerprint)
        if not self.keyring.is_file() or self.keyring.read_bytes() != public:
            atomic_write(self.keyring, public)
            atomic_write(
                self.root / "bastion-archive-keyring.asc", self._gpg("--armor", "--export", fingerprint)
            )
        return fingerprint

    def _clearsign(self, text: bytes, fingerprint: str) -> bytes:
        return self._gpg("--digest-algo", "SHA256", "--local-user", fingerprint, "--clearsign", data=text)
