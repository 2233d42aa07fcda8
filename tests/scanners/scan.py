"""Syft and Trivy run offline on an OCI layout or a root filesystem, their reports reduced to one shape.

Invocations (both need no network and no vulnerability database):

* ``syft scan oci-dir:LAYOUT -o syft-json=OUT`` (Syft 1.18's ``oci-dir:`` takes no tag: the layout must
  hold one manifest, which ``bastion export --platform`` gives) and ``syft scan dir:ROOT``; the update
  check is switched off with ``SYFT_CHECK_FOR_APP_UPDATE=false``.
* ``trivy image --input LAYOUT`` or ``trivy rootfs ROOT`` with ``--format cyclonedx``: Trivy says that
  format "disables security scanning" unless ``--scanners vuln`` is given, so no database is fetched;
  ``--skip-db-update --offline-scan`` make sure of it. CycloneDX rather than Trivy's JSON because this
  Trivy's JSON splits Debian versions into Epoch/Version/Release and carries no purls.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from packageurl import PackageURL

TIMEOUT = 900


@dataclass(frozen=True, order=True)
class Found:
    """One package as a tool reports it; ``type`` is the tool's own word (syft ``deb``, trivy ``debian``)."""

    type: str
    name: str
    version: str
    purl: str
    path: str


@dataclass(frozen=True)
class Report:
    tool: str
    distro_id: str
    distro_like: tuple[str, ...]
    distro_version: str
    packages: tuple[Found, ...]

    def of_type(self, *types: str) -> set[tuple[str, str]]:
        return {(p.name, p.version) for p in self.packages if p.type in types}

    def counts(self) -> dict[str, int]:
        return dict(sorted(Counter(p.type for p in self.packages).items()))

    def to_json(self) -> dict[str, Any]:
        return {
            "tool": self.tool,
            "distro": {"id": self.distro_id, "like": list(self.distro_like), "version": self.distro_version},
            "counts": self.counts(),
            "packages": [asdict(p) for p in sorted(self.packages)],
        }


def _run(cmd: list[str], env: dict[str, str] | None = None) -> None:
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=TIMEOUT, check=False, env={**os.environ, **(env or {})}
    )
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stderr[-3000:]}")


def syft_command(syft: Path, target: str, out: Path) -> list[str]:
    return [str(syft), "scan", target, "-q", "-o", f"syft-json={out}"]


SYFT_ENV = {"SYFT_CHECK_FOR_APP_UPDATE": "false"}


def trivy_command(trivy: Path, target: str, out: Path, cache_dir: Path) -> list[str]:
    """``target`` is ``image:LAYOUT`` or ``rootfs:DIR``."""
    kind, _, path = target.partition(":")
    where = ["image", "--input", path] if kind == "image" else ["rootfs", path]
    return [
        str(trivy), *where, "--format", "cyclonedx", "--output", str(out), "--cache-dir", str(cache_dir),
        "--skip-db-update", "--offline-scan", "--quiet",
    ]  # fmt: skip


def syft_scan(syft: Path, target: str, out: Path) -> Report:
    _run(syft_command(syft, target, out), SYFT_ENV)
    return read_syft(json.loads(out.read_text()))


def trivy_scan(trivy: Path, target: str, out: Path, cache_dir: Path) -> Report:
    _run(trivy_command(trivy, target, out, cache_dir))
    return read_trivy(json.loads(out.read_text()))


def read_syft(doc: dict[str, Any]) -> Report:
    distro = doc.get("distro") or {}
    packages = tuple(
        Found(
            a["type"],
            a["name"],
            a["version"],
            a.get("purl", ""),
            (a.get("locations") or [{}])[0].get("path", ""),
        )
        for a in doc["artifacts"]
    )
    return Report(
        "syft",
        distro.get("id", ""),
        tuple(distro.get("idLike") or ()),
        distro.get("versionID", ""),
        packages,
    )


def _properties(component: dict[str, Any]) -> dict[str, str]:
    return {p["name"]: p.get("value", "") for p in component.get("properties", [])}


def _trivy_version(component: dict[str, Any]) -> str:
    """The full version: Trivy moves a Debian epoch out of the version into a purl qualifier."""
    version = str(component.get("version", ""))
    purl = component.get("purl")
    if purl:
        qualifiers = PackageURL.from_string(purl).qualifiers
        if isinstance(qualifiers, dict) and qualifiers.get("epoch"):
            return f"{qualifiers['epoch']}:{version}"
    return version


def read_trivy(doc: dict[str, Any]) -> Report:
    packages: list[Found] = []
    os_name, os_version = "", ""

    def walk(components: list[dict[str, Any]]) -> None:
        nonlocal os_name, os_version
        for c in components:
            props = _properties(c)
            if c.get("type") == "operating-system":
                os_name, os_version = c.get("name", ""), c.get("version", "")
            elif c.get("type") == "library":
                packages.append(
                    Found(
                        props.get("aquasecurity:trivy:PkgType", ""),
                        c["name"],
                        _trivy_version(c),
                        c.get("purl", ""),
                        props.get("aquasecurity:trivy:FilePath", ""),
                    )
                )
            walk(c.get("components", []))

    walk(doc.get("components", []))
    return Report("trivy", os_name, (), os_version, tuple(packages))
