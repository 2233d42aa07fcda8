"""OCI platforms → Debian architectures (OCI image-index spec "platform"; dpkg-architecture(1))."""

from __future__ import annotations

from bastion.errors import InputError

_PLATFORM_TO_ARCH = {
    "linux/amd64": "amd64",
    "linux/arm64": "arm64",
    "linux/arm64/v8": "arm64",
    "linux/arm/v7": "armhf",
    "linux/arm/v5": "armel",
    "linux/386": "i386",
    "linux/ppc64le": "ppc64el",
    "linux/s390x": "s390x",
    "linux/riscv64": "riscv64",
    "linux/mips64le": "mips64el",
}


def debian_arch(platform: str) -> str:
    try:
        return _PLATFORM_TO_ARCH[platform]
    except KeyError:
        known = ", ".join(sorted(_PLATFORM_TO_ARCH))
        raise InputError(f"unsupported platform {platform!r} (known: {known})") from None
