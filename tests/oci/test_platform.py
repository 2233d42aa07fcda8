"""The one platform type: every spelling of a platform normalises to one value (OCI image-index spec
"platform", as containerd's ``platforms.Normalize`` reads it), printed in one canonical form; the JSON
Bastion writes keeps the form its images always had, so their digests do not change."""

from __future__ import annotations

import platform as stdlib_platform

import pytest

from bastion.errors import InputError, IntegrityError
from bastion.oci import Platform, host_platform


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("linux/amd64", "linux/amd64"),
        ("linux/amd64/v1", "linux/amd64"),
        ("linux/amd64/v3", "linux/amd64/v3"),
        ("linux/x86_64", "linux/amd64"),
        ("linux/x86-64", "linux/amd64"),
        ("amd64", "linux/amd64"),
        ("linux/arm64", "linux/arm64"),
        ("linux/arm64/v8", "linux/arm64"),
        ("linux/arm64/8", "linux/arm64"),
        ("linux/aarch64", "linux/arm64"),
        ("arm64", "linux/arm64"),
        ("Linux/ARM64/V8", "linux/arm64"),
        ("linux/arm", "linux/arm/v7"),
        ("linux/arm/7", "linux/arm/v7"),
        ("linux/arm/v7", "linux/arm/v7"),
        ("linux/arm/v6", "linux/arm/v6"),
        ("linux/arm/5", "linux/arm/v5"),
        ("linux/i386", "linux/386"),
        ("linux/ppc64le", "linux/ppc64le"),
        ("windows/amd64", "windows/amd64"),
        (" linux/s390x ", "linux/s390x"),
    ],
)
def test_every_spelling_of_a_platform_is_one_platform(text: str, canonical: str) -> None:
    platform = Platform.parse(text)
    assert str(platform) == canonical
    assert platform == Platform.parse(canonical) and hash(platform) == hash(Platform.parse(canonical))


def test_the_issues_examples() -> None:
    assert (
        Platform.parse("linux/arm64/v8") == Platform.parse("linux/arm64") == Platform("linux", "arm64", "v8")
    )
    assert Platform.parse("linux/arm/v7") == Platform.parse("linux/arm") == Platform("linux", "arm")
    assert Platform.parse("linux/arm/v6") != Platform.parse("linux/arm")


@pytest.mark.parametrize(
    "text",
    ["", "linux/", "/arm64", "linux//", "linux/arm64/v8/x", "linux/arm 64", "linux/../x",
     "linux/arm64\n/v8", "linux/" + "a" * 65, "linux/amd64;rm", "\uff4cinux/amd64"],
)  # fmt: skip
def test_what_is_not_a_platform_is_refused_in_one_line(text: str) -> None:
    with pytest.raises(InputError) as refused:
        Platform.parse(text)
    line = refused.value.diagnostic()
    assert "\n" not in line and "not a platform" in line and len(line) < 300


def test_the_json_written_keeps_arm64_v8_and_reads_back_as_the_same_platform() -> None:
    """Image configs and index descriptors have always said ``"variant": "v8"`` for arm64 (the
    image-index spec's table lists it); a reader finds one platform whether a document says it or not."""
    arm64 = Platform.parse("linux/arm64")
    assert arm64.to_json() == {"architecture": "arm64", "os": "linux", "variant": "v8"}
    assert Platform.from_json({"architecture": "arm64", "os": "linux"}) == arm64
    assert Platform.from_json(arm64.to_json()) == arm64
    assert Platform.parse("linux/arm").to_json() == {"architecture": "arm", "os": "linux", "variant": "v7"}
    assert Platform.parse("linux/amd64").to_json() == {"architecture": "amd64", "os": "linux"}


@pytest.mark.parametrize(
    "document",
    [[], {"os": "linux"}, {"architecture": "amd64"}, {"os": "linux", "architecture": "arm", "variant": 7}],
)  # fmt: skip
def test_a_malformed_platform_document_is_an_integrity_error(document: object) -> None:
    with pytest.raises(IntegrityError, match="platform"):
        Platform.from_json(document, where="sha256:config")


def test_a_platform_without_a_variant_is_served_by_any_variant_and_the_reverse() -> None:
    arm64 = Platform.parse("linux/arm64")
    assert Platform.parse("linux/arm64/v8").matches(arm64)
    assert Platform.parse("linux/amd64/v3").matches(Platform.parse("linux/amd64"))
    assert Platform.parse("linux/amd64").matches(Platform.parse("linux/amd64/v3"))
    assert not Platform.parse("linux/arm/v6").matches(Platform.parse("linux/arm"))
    assert not Platform.parse("linux/amd64").matches(arm64)
    assert not Platform.parse("windows/amd64").matches(Platform.parse("linux/amd64"))


@pytest.mark.parametrize(
    ("machine", "expected"),
    [("x86_64", "linux/amd64"), ("aarch64", "linux/arm64"), ("arm64", "linux/arm64"),
     ("armv7l", "linux/arm/v7"), ("armv6l", "linux/arm/v6"), ("i386", "linux/386"),
     ("ppc64le", "linux/ppc64le"), ("s390x", "linux/s390x"), ("riscv64", "linux/riscv64")],
)  # fmt: skip
def test_the_host_platform_in_go_names(monkeypatch: pytest.MonkeyPatch, machine: str, expected: str) -> None:
    monkeypatch.setattr(stdlib_platform, "machine", lambda: machine)
    assert str(host_platform()) == expected
