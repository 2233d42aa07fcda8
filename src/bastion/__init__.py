"""Bastion: minimal, hardened, reproducible container images from Debian packages.

The public API is small on purpose; modules whose names start with an underscore are internal and
may change without notice.
"""

__version__ = "0.1.0"


def _skip_slow_iri_checks() -> None:
    """Keep jsonschema from loading ``rfc3987_syntax``.

    jsonschema imports that package, when it is installed, to check the ``iri`` and
    ``iri-reference`` string formats; the package compiles 38 Lark grammars at import, which takes
    about two seconds here, on every command that validates anything (CycloneDX, OpenVEX). It comes
    in only through jsonschema's optional ``format-nongpl`` extra, which cyclonedx-python-lib asks
    for. Without it jsonschema leaves those two formats unchecked; every structural rule of the
    schemas is still enforced. Set ``BASTION_STRICT_IRI=1`` to keep the checks.
    """
    import os
    import sys

    if os.environ.get("BASTION_STRICT_IRI") != "1":
        sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]  # None: "not importable"


_skip_slow_iri_checks()
