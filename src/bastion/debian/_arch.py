"""The one OCI ↔ Debian architecture table: the OCI platform of each Debian release architecture
(https://www.debian.org/ports/, dpkg-architecture(1)), and the platforms a definition may name."""

from __future__ import annotations

from bastion.errors import InputError
from bastion.oci import Platform

__all__ = ["debian_arch", "debian_platform", "platform_spellings"]

# OCI image-index spec platform names (GOARCH, plus the ARM variant) of Debian's release architectures.
_DEBIAN_ARCH: dict[Platform, str] = {
    Platform("linux", "amd64"): "amd64",
    Platform("linux", "arm64"): "arm64",
    Platform("linux", "arm", "v7"): "armhf",
    Platform("linux", "arm", "v5"): "armel",
    Platform("linux", "386"): "i386",
    Platform("linux", "ppc64le"): "ppc64el",
    Platform("linux", "s390x"): "s390x",
    Platform("linux", "riscv64"): "riscv64",
    Platform("linux", "mips64le"): "mips64el",
}
# Debian's own names are accepted as spellings of the same platform (``linux/armhf``).
_BY_DEBIAN_NAME = {f"linux/{arch}": platform for platform, arch in _DEBIAN_ARCH.items()}
_KNOWN = ", ".join(sorted(map(str, _DEBIAN_ARCH)))  # for messages


def debian_platform(text: str) -> Platform:
    """The platform ``text`` names, if Debian builds for it: an OCI spelling in any of its forms
    (``linux/arm64``, ``linux/arm64/v8``, ``linux/arm``) or Debian's (``linux/armhf``); any other
    text is refused with :class:`InputError`."""
    platform = _BY_DEBIAN_NAME.get(text)
    if platform is None:
        try:
            platform = Platform.parse(text)
        except InputError:
            raise InputError(f"{text[:80]!r} is not a platform os/arch[/variant] ({_KNOWN})") from None
    if platform not in _DEBIAN_ARCH:
        raise InputError(f"{text[:80]!r} is not a Debian architecture; use one of {_KNOWN}")
    return platform


def debian_arch(platform: Platform) -> str:
    """The Debian architecture (``armhf``) of a platform :func:`debian_platform` accepted."""
    try:
        return _DEBIAN_ARCH[platform]
    except KeyError:
        raise InputError(f"{platform} is not a Debian architecture") from None


def platform_spellings() -> list[str]:
    """Every text :func:`debian_platform` accepts in ``os/arch[/variant]`` form, for the definition
    schema: the canonical OCI form, Debian's name, ``arm`` (v7) and arm64's ``v8``."""
    spellings = {str(p) for p in _DEBIAN_ARCH} | set(_BY_DEBIAN_NAME) | {"linux/arm", "linux/arm64/v8"}
    return sorted(spellings)
