"""Building images: rootfs assembly without maintainer scripts, hardening, image tests, layers."""

from bastion.pipeline._build import BuiltPlatform, BuiltVariant, ImageTestFailed, build

__all__ = ["BuiltPlatform", "BuiltVariant", "ImageTestFailed", "build"]
