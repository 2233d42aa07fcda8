"""Builds repository slices for the supply tests (checked in, so test assets are reproducible).

* :func:`real_slice`: the real signed ``InRelease`` of Debian bookworm, its real ``Packages.xz``
  (at its by-hash path) and a few real ``.deb`` files, fetched from the host's mirror through
  Bastion's own verified client and laid out as a mirror, so tests can flip any byte of them.
* :func:`signed_slice`: a repository we sign ourselves with a throwaway key, holding given ``.deb``
  files, for what the real archive never contains (an expired ``Valid-Until``, a hostile package).
"""

from __future__ import annotations

import hashlib
import lzma
import shutil
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

from bastion.cache import Cache, Download, Fetcher
from bastion.debian import host_sources, load_index, open_suites, read_control

SLICE_PACKAGES = ("media-types", "netbase")


def real_slice(dest: Path, home: Path, packages: tuple[str, ...] = SLICE_PACKAGES) -> Path:
    """Lay out a mirror of bookworm main/binary-amd64 with ``packages`` under ``dest/debian``."""
    sources = [s for s in host_sources() if "bookworm" in s.suites]
    if not sources:
        raise RuntimeError("the host's apt sources have no bookworm suite")
    source = sources[0]
    cache = Cache(home / "cache")
    with Fetcher(cache) as fetcher:
        raw_inrelease = fetcher.get(f"{source.uri.rstrip('/')}/dists/bookworm/InRelease")
        suite = next(s for s in open_suites([source], fetcher) if s.name == "bookworm")
        index = load_index([suite], "amd64", fetcher, home / "cache" / "indices")
        entry = suite.release.index("main/binary-amd64/Packages.xz")
        assert entry is not None
        packages_xz = fetcher.fetch(
            Download(
                f"{suite.base}/dists/bookworm/main/binary-amd64/by-hash/SHA256/{entry.sha256}",
                entry.sha256,
                entry.size,
                "Packages.xz",
            )
        )
        debs = []
        for name in packages:
            record = next(r for r in index.candidates(name) if r.suite == "bookworm")
            path = fetcher.fetch(Download(record.url, record.sha256, record.size, record.filename))
            debs.append((record.filename, path))
    root = dest / "debian"
    dists = root / "dists" / "bookworm"
    (dists / "main" / "binary-amd64" / "by-hash" / "SHA256").mkdir(parents=True)
    (dists / "InRelease").write_bytes(raw_inrelease)
    shutil.copyfile(packages_xz, dists / "main" / "binary-amd64" / "by-hash" / "SHA256" / entry.sha256)
    for filename, path in debs:
        target = root / filename
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    return root


def signed_slice(
    dest: Path,
    clearsign: object,
    debs: list[Path],
    *,
    suite: str = "bookworm",
    valid_until: datetime | None = None,
    date: datetime | None = None,
) -> Path:
    """A repository signed with a test key: ``dest/repo/dists/<suite>/InRelease`` and a flat pool."""
    root = dest / "repo"
    pool = root / "pool" / "main"
    pool.mkdir(parents=True)
    stanzas = []
    for deb in debs:
        data = deb.read_bytes()
        (pool / deb.name).write_bytes(data)
        control = read_control(deb).decode().rstrip("\n")
        stanzas.append(
            f"{control}\nFilename: pool/main/{deb.name}\nSize: {len(data)}\nSHA256: {hashlib.sha256(data).hexdigest()}\n"
        )
    packages = "\n".join(stanzas).encode()
    packages_xz = lzma.compress(packages)
    bindir = root / "dists" / suite / "main" / "binary-amd64"
    bindir.mkdir(parents=True)
    (bindir / "Packages.xz").write_bytes(packages_xz)
    moment = date or datetime.now(UTC)
    lines = [
        "Origin: Bastion tests",
        f"Suite: {suite}",
        f"Codename: {suite}",
        f"Date: {format_datetime(moment, usegmt=True)}",
    ]
    if valid_until is not None:
        lines.append(f"Valid-Until: {format_datetime(valid_until, usegmt=True)}")
    lines += ["Architectures: amd64", "Components: main", "SHA256:"]
    for name, blob in (("Packages.xz", packages_xz), ("Packages", packages)):
        lines.append(f" {hashlib.sha256(blob).hexdigest()} {len(blob)} main/binary-amd64/{name}")
    release = ("\n".join(lines) + "\n").encode()
    (root / "dists" / suite / "InRelease").write_bytes(clearsign(release))  # type: ignore[operator]
    return root
