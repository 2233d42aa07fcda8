"""The one OCI <-> Debian architecture table: which platforms a definition may name, in every spelling,
and the Debian architecture each one resolves packages for."""

from __future__ import annotations

import pytest

from bastion.debian import debian_arch, debian_platform, platform_spellings
from bastion.errors import InputError
from bastion.oci import Platform


@pytest.mark.parametrize(
    ("text", "platform", "arch"),
    [
        ("linux/amd64", "linux/amd64", "amd64"),
        ("linux/arm64", "linux/arm64", "arm64"),
        ("linux/arm64/v8", "linux/arm64", "arm64"),
        ("linux/aarch64", "linux/arm64", "arm64"),
        ("linux/arm/v7", "linux/arm/v7", "armhf"),
        ("linux/arm", "linux/arm/v7", "armhf"),
        ("linux/armhf", "linux/arm/v7", "armhf"),
        ("linux/arm/v5", "linux/arm/v5", "armel"),
        ("linux/armel", "linux/arm/v5", "armel"),
        ("linux/386", "linux/386", "i386"),
        ("linux/i386", "linux/386", "i386"),
        ("linux/ppc64el", "linux/ppc64le", "ppc64el"),
        ("linux/ppc64le", "linux/ppc64le", "ppc64el"),
        ("linux/mips64el", "linux/mips64le", "mips64el"),
        ("linux/s390x", "linux/s390x", "s390x"),
        ("linux/riscv64", "linux/riscv64", "riscv64"),
    ],
)
def test_debian_platforms_in_every_spelling(text: str, platform: str, arch: str) -> None:
    assert str(debian_platform(text)) == platform
    assert debian_platform(text) == Platform.parse(platform)
    assert debian_arch(debian_platform(text)) == arch


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("linux/sparc64", "not a Debian architecture"),
        ("linux/arm/v6", "not a Debian architecture"),
        ("windows/amd64", "not a Debian architecture"),
        ("linux/arm64/v8/x", "not a platform"),
        ("linux//", "not a platform"),
    ],
)
def test_other_platforms_are_refused_naming_the_known_ones(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message) as refused:
        debian_platform(text)
    assert "linux/arm/v7" in refused.value.diagnostic() and "\n" not in refused.value.diagnostic()


def test_the_schema_lists_every_spelling_the_loader_accepts() -> None:
    spellings = platform_spellings()
    assert {"linux/armhf", "linux/arm64/v8", "linux/arm/v7", "linux/amd64"} <= set(spellings)
    for text in spellings:
        debian_arch(debian_platform(text))
