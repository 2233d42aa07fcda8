"""Which packages an OS package already accounts for, so that one thing is not reported twice.

Syft's rule, read from its source (``internal/relationship/by_file_ownership.go`` and
``exclude_language_packages_by_file_ownership_overlap.go``): an "ownership-by-file-overlap"
relationship links an OS package (deb, apk, rpm) to any package whose evidence path is among the
files the OS package lists — the package databases and ``/usr/share/doc/**/copyright`` excepted —
and language packages installed as discrete units are then removed, while packages *extracted from*
an owned file (Go modules in a binary, jars inside an archive, Rust crates) are kept.

Our rule is the same with one refinement, so that vendored copies survive:

* A **pypi** or **npm** package is dropped when (a) a deb or apk package lists the file that is its
  evidence (``METADATA``, ``PKG-INFO``, the ``.egg-info`` file, ``package.json``) and (b) it is
  installed as a unit of its own: its ``.dist-info``/``.egg-info`` sits directly in a
  ``site-packages`` or ``dist-packages`` directory, or its ``package.json`` is a package directly
  under the outermost ``node_modules``. Debian's ``python3-requests`` installs
  ``/usr/lib/python3/dist-packages/requests-2.28.1.dist-info``: that is the deb, reported once.
* Vendored copies are kept even when an OS package owns their files: metadata nested inside another
  package's tree (``pip/_vendor/<x>.dist-info``, ``node_modules/a/node_modules/b``) describes a
  component the OS package's name and version do not.
* **golang** and **maven** packages are never dropped: they are components inside an owned file (a
  binary, a jar), not re-packagings of it; a jar shipped in a deb is reported.
"""

from __future__ import annotations

import re

from bastion.sbom._model import Package, PackageType

_OS_TYPES = frozenset({PackageType.DEB, PackageType.APK})
_SUBSUMABLE = frozenset({PackageType.PYPI, PackageType.NPM})
_NEVER_OWNED = re.compile(r"^(?:/var/lib/dpkg/|/lib/apk/db/|/usr/lib/apk/db/|/usr/share/doc/.*/copyright$)")
_SITE_DIRS = frozenset({"site-packages", "dist-packages"})


def installed_as_unit(package: Package, path: str) -> bool:
    """Whether ``path`` (the package's evidence) is a top-level install, not a vendored copy."""
    parts = path.split("/")
    if package.type is PackageType.PYPI:
        # .../site-packages/x.dist-info/METADATA, .../x.egg-info/PKG-INFO, or .../x.egg-info (a file)
        meta_dir = -2 if parts[-1] in ("METADATA", "PKG-INFO") else -1
        return len(parts) >= -meta_dir + 1 and parts[meta_dir - 1] in _SITE_DIRS
    if package.type is PackageType.NPM:
        return parts.count("node_modules") == 1
    return False


def drop_owned(packages: list[Package]) -> list[Package]:
    """``packages`` without the language packages OS packages own (see the module docs)."""
    owned: set[str] = set()
    for package in packages:
        if package.type in _OS_TYPES:
            owned.update(p for p in package.files if not _NEVER_OWNED.match(p))
    kept = []
    for package in packages:
        if package.type in _SUBSUMABLE and any(
            loc.path in owned and installed_as_unit(package, loc.path) for loc in package.locations
        ):
            continue
        kept.append(package)
    return kept
