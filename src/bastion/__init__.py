"""Bastion: minimal, hardened, reproducible container images from Debian packages.

The public API is small on purpose; modules whose names start with an underscore are internal and
may change without notice.
"""

__version__ = "0.1.0"
