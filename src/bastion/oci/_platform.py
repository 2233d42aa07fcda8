"""The one platform type: ``os/architecture[/variant]`` of an image (OCI image-index spec, "platform").

Every spelling of a platform is normalised once, when a :class:`Platform` is made, as containerd's
``platforms.Normalize`` does, so that two spellings of one platform compare, hash and print equal:

* ``x86_64``/``x86-64`` are ``amd64``, ``aarch64`` is ``arm64``, ``i386`` is ``386`` (Go's names);
* ``arm64``'s default variant ``v8`` is dropped (``linux/arm64/v8`` is ``linux/arm64``);
* ``arm`` without a variant is ``arm/v7``, and a bare ``7`` is ``v7``;
* ``amd64``'s ``v1`` (the baseline every amd64 CPU has) is dropped.

``str()`` gives that canonical form. The JSON written into image configs and index descriptors keeps
``"variant": "v8"`` for ``arm64``, as the image-index spec's table lists it and as Bastion always wrote
it, so the digests of images built before stay the same.

Distributions' own names for architectures (Debian's ``armhf``, ``ppc64el``) are not OCI names and are
not known here: ``bastion.debian`` maps them.
"""

from __future__ import annotations

import platform as _host
import re
from dataclasses import dataclass
from typing import Any

from bastion.errors import InputError, IntegrityError

__all__ = ["Platform", "host_platform"]

# A part of a platform as images spell them (image-index spec: values of GOOS, GOARCH and the variant):
# bounded, and never a '/', so that the text form parses back to the same platform.
_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}")
_ARCH_SPELLINGS = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64", "i386": "386"}
# uname -m on ARM names the CPU's architecture version; the image variant is the same number.
_UNAME_ARM = re.compile(r"armv([5-8])[a-z]*")


def _normal(architecture: str, variant: str) -> tuple[str, str]:
    architecture = _ARCH_SPELLINGS.get(architecture, architecture)
    if architecture == "arm64" and variant in ("8", "v8", "v8.0"):
        return architecture, ""
    if architecture == "arm" and variant in ("", "5", "6", "7", "8"):
        return architecture, "v" + (variant or "7")
    if architecture == "amd64" and variant == "v1":
        return architecture, ""
    return architecture, variant


@dataclass(frozen=True, order=True)
class Platform:
    """An image platform, normalised when made (module docstring): ``Platform("linux", "arm64", "v8")``
    equals ``Platform("linux", "arm64")``."""

    os: str
    architecture: str
    variant: str = ""

    def __post_init__(self) -> None:
        architecture, variant = _normal(self.architecture.lower(), self.variant.lower())
        object.__setattr__(self, "os", self.os.lower())
        object.__setattr__(self, "architecture", architecture)
        object.__setattr__(self, "variant", variant)

    @classmethod
    def parse(cls, text: str) -> Platform:
        """Parse ``os/arch[/variant]`` (``linux/amd64``, ``linux/arm64/v8``); a bare arch means Linux.
        Anything else is refused with :class:`InputError`."""
        parts = text.strip().split("/")
        if len(parts) == 1:
            parts.insert(0, "linux")
        if len(parts) not in (2, 3) or not all(_PART.fullmatch(part) for part in parts):
            raise InputError(
                f"not a platform: {text[:80]!r}",
                hint="use os/arch[/variant], e.g. linux/amd64 or linux/arm/v7",
            )
        return cls(parts[0], parts[1], parts[2] if len(parts) == 3 else "")

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)

    def matches(self, wanted: Platform) -> bool:
        """Whether an image for this platform serves ``wanted``: the same OS and architecture, and the
        same variant where both name one (an image that records none serves every variant)."""
        return (
            self.os == wanted.os
            and self.architecture == wanted.architecture
            and (not wanted.variant or not self.variant or self.variant == wanted.variant)
        )

    @property
    def is_unknown(self) -> bool:
        """``unknown/unknown``: what buildkit records for the attestation manifests it puts into an
        index, which are no image anyone runs."""
        return self.os == self.architecture == "unknown"

    def to_json(self) -> dict[str, Any]:
        """The ``platform`` object of an index descriptor, and the same fields of an image config."""
        out: dict[str, Any] = {"architecture": self.architecture, "os": self.os}
        variant = "v8" if self.architecture == "arm64" and not self.variant else self.variant
        if variant:
            out["variant"] = variant
        return out

    @classmethod
    def from_json(cls, obj: object, *, where: str | None = None) -> Platform:
        """A descriptor's ``platform`` or an image config's fields; one that is missing or not a string
        is refused. A pulled image may name any platform, so the names themselves are not checked."""
        if not isinstance(obj, dict):
            raise IntegrityError("platform is not a JSON object", where=where)
        values = {
            "os": obj.get("os"),
            "architecture": obj.get("architecture"),
            "variant": obj.get("variant", ""),
        }
        for key, value in values.items():
            if not isinstance(value, str):
                raise IntegrityError(f"platform {key!r} is missing or not a string", where=where)
        return cls(values["os"], values["architecture"], values["variant"])


def host_platform() -> Platform:
    """The platform of the machine Bastion runs on (``uname -m`` in Go's names)."""
    machine = _host.machine().lower()
    arm = _UNAME_ARM.fullmatch(machine)
    if arm is not None:
        return Platform("linux", "arm", arm.group(1))
    return Platform("linux", machine)
