"""InRelease: the signed root of a Debian suite.

The chain of trust (SecureApt; Debian Repository Format, "Release files") runs: a keyring we trust
→ the OpenPGP signature on ``InRelease`` → the ``SHA256`` list in it → each ``Packages`` index → the
``SHA256`` of each ``.deb`` in that index. This module checks the first two links.

Signature checking is delegated to ``gpgv`` (the verifier apt itself uses) rather than written in
Python: OpenPGP parsing is exactly the code no one should hand-roll. We take the signed text from
gpgv's ``--output``, never from our own reading of the cleartext, so text outside the signature
can never be mistaken for signed data.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path

from debian.deb822 import Deb822

from bastion import _clock as clock
from bastion.errors import EnvironmentProblem, IntegrityError


@dataclass(frozen=True)
class IndexFile:
    """One file listed in a Release file's SHA256 section."""

    path: str
    sha256: str
    size: int


@dataclass(frozen=True)
class Release:
    """The verified content of an InRelease file."""

    suite: str
    codename: str
    date: datetime
    valid_until: datetime | None
    acquire_by_hash: bool
    files: dict[str, IndexFile]
    signers: tuple[str, ...]  # primary key fingerprints from gpgv's VALIDSIG lines
    inrelease_sha256: str

    def index(self, path: str) -> IndexFile | None:
        return self.files.get(path)


def verify_inrelease(
    data: bytes,
    keyring: Path,
    *,
    where: str,
    expected_suite: str,
    now: datetime | None = None,
    allow_expired: bool = False,
) -> tuple[Release, list[str]]:
    """Verify an InRelease file's signature and dates; return the parsed Release and any warnings.

    Raises :class:`IntegrityError` for a bad or unknown signature, a suite mismatch, or an expired
    ``Valid-Until`` (unless ``allow_expired``).
    """
    if not keyring.is_file():
        raise IntegrityError(f"keyring {keyring} does not exist", where=where)
    gpgv = shutil.which("gpgv")
    if gpgv is None:
        raise EnvironmentProblem("gpgv is not installed", hint="apt-get install gpgv")
    with tempfile.TemporaryDirectory(prefix="bastion-gpgv-") as tmp:
        signed = Path(tmp) / "InRelease"
        signed.write_bytes(data)
        out = Path(tmp) / "Release"
        proc = subprocess.run(
            [gpgv, "--status-fd", "1", "--keyring", str(keyring), "--output", str(out), str(signed)],
            capture_output=True,
            check=False,
        )
        status = proc.stdout.decode("utf-8", "replace").splitlines()
        if proc.returncode != 0 or not out.is_file():
            raise IntegrityError(_gpgv_failure(status, keyring), where=where)
        release_text = out.read_bytes()
    signers = tuple(
        sorted(
            {
                line.split()[-1]
                for line in status
                if line.startswith("[GNUPG:] VALIDSIG") and len(line.split()) >= 3
            }
        )
    )
    if not signers:
        raise IntegrityError("gpgv reported no valid signature", where=where)
    release = _parse_release(release_text, where, signers, hashlib.sha256(data).hexdigest())

    # apt-pkg acquire-item.cc (VerifyVendor): the signed Release must be for the suite we asked for,
    # or an attacker could replay another suite's valid, signed metadata.
    if expected_suite not in (release.suite, release.codename):
        raise IntegrityError(
            f"InRelease is for suite {release.suite!r} (codename {release.codename!r}), not {expected_suite!r}",
            where=where,
        )
    warnings: list[str] = []
    moment = now or clock.now()
    # Debian Repository Format, "Valid-Until": after this date the Release file must not be trusted.
    if release.valid_until is not None and moment > release.valid_until:
        message = f"InRelease expired at {release.valid_until.isoformat()} (Valid-Until)"
        if not allow_expired:
            raise IntegrityError(
                message, where=where, hint="for a pinned snapshot set contents.allow-expired: true"
            )
        warnings.append(f"{where}: {message}; accepted ONLY because allow-expired is set")
    return release, warnings


def _gpgv_failure(status: list[str], keyring: Path) -> str:
    for line in status:
        words = line.split()
        if len(words) >= 2 and words[1] == "BADSIG":
            return "InRelease signature is BAD (the file was altered after signing)"
        if len(words) >= 2 and words[1] == "NO_PUBKEY":
            return (
                f"InRelease is signed by key {words[2] if len(words) > 2 else '?'} which is not in {keyring}"
            )
        if len(words) >= 2 and words[1] in ("EXPKEYSIG", "REVKEYSIG"):
            return f"InRelease is signed by an expired or revoked key ({' '.join(words[2:3])})"
    if any("NODATA" in line for line in status):
        return "InRelease carries no OpenPGP signature"
    return "InRelease signature could not be verified"


def _parse_date(value: str, field: str, where: str) -> datetime:
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        raise IntegrityError(f"malformed {field} {value!r} in Release", where=where) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _sha256_section(text: str, where: str) -> dict[str, IndexFile]:
    """The ``SHA256`` field: one ``<hex> <size> <path>`` line per index file (Debian Repository
    Format, "MD5Sum, SHA1, SHA256"). Parsed directly: python-debian's multivalued parsing of the
    ~800 lines of a Debian suite costs more than everything else in a warm resolution."""
    files: dict[str, IndexFile] = {}
    for line in text.splitlines():
        words = line.split()
        if not words:
            continue
        if len(words) != 3 or not words[1].isdigit() or len(words[0]) != 64:
            raise IntegrityError(f"malformed SHA256 entry {line.strip()!r} in Release", where=where)
        files[words[2]] = IndexFile(words[2], words[0].lower(), int(words[1]))
    return files


def _parse_release(text: bytes, where: str, signers: tuple[str, ...], digest: str) -> Release:
    try:
        para = Deb822(text.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise IntegrityError(f"malformed Release: {exc}", where=where) from None
    if "Date" not in para:
        raise IntegrityError("Release has no Date field", where=where)
    files = _sha256_section(str(para.get("SHA256", "")) if "SHA256" in para else "", where)
    if not files:
        # SecureApt: without SHA256 sums nothing below the Release file can be checked.
        raise IntegrityError("Release has no SHA256 section", where=where)
    valid_until = para.get("Valid-Until")
    return Release(
        suite=str(para.get("Suite", "")),
        codename=str(para.get("Codename", "")),
        date=_parse_date(str(para["Date"]), "Date", where),
        valid_until=_parse_date(str(valid_until), "Valid-Until", where) if valid_until else None,
        acquire_by_hash=str(para.get("Acquire-By-Hash", "no")).lower() == "yes",
        files=files,
        signers=signers,
        inrelease_sha256=digest,
    )
