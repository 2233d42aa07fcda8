"""Bastion's own python images (runtime and dev), built once per session through the real command line
and exported as OCI layouts whose layers the tests read with tarfile (true owners and modes)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bastion.compliance import ComplianceResult, compliance
from bastion.image import ImageTarget
from tests.compliance.imagefs import target_from_oci_dir
from tests.conftest import REPO_ROOT, run_cli


@dataclass(frozen=True)
class BuiltImage:
    reference: str
    layout: Path  # the oci-dir export
    target: ImageTarget
    result: ComplianceResult  # the default profile's


@pytest.fixture(scope="session")
def python_images(
    tmp_path_factory: pytest.TempPathFactory, cached_home: Path
) -> Iterator[dict[str, BuiltImage]]:
    definition = REPO_ROOT / "catalog" / "python" / "python.yaml"
    built = run_cli(
        "build", str(definition), "--locked", "--skip-tests", "--platform", "linux/amd64", home=cached_home
    )
    assert built.code == 0, built.stderr
    images = {}
    for variant, reference in (("runtime", "bastion/python:3.11"), ("dev", "bastion/python:3.11-dev")):
        work = tmp_path_factory.mktemp(f"python-{variant}")
        exported = run_cli(
            "export",
            reference,
            f"oci-dir://{work / 'oci'}",
            "--platform",
            "linux/amd64",
            "--no-attestations",
            home=cached_home,
        )
        assert exported.code == 0, exported.stderr
        target = target_from_oci_dir(work / "oci", work / "rootfs", name=reference)
        images[variant] = BuiltImage(reference, work / "oci", target, compliance(target))
    yield images
    for image in images.values():
        image.target.close()
