"""Licence strings found in language metadata, turned into SPDX expressions only where that is clear."""

from __future__ import annotations

from functools import cache

from license_expression import ExpressionError, Licensing, get_spdx_licensing

from bastion.sbom._model import License

# Trove classifiers that name exactly one SPDX licence (https://pypi.org/classifiers/). Classifiers
# such as "License :: OSI Approved :: BSD License" name a family, not a licence, and are not mapped.
CLASSIFIERS: dict[str, str] = {
    "License :: OSI Approved :: MIT License": "MIT",
    "License :: OSI Approved :: MIT No Attribution License (MIT-0)": "MIT-0",
    "License :: OSI Approved :: Apache Software License": "Apache-2.0",
    "License :: OSI Approved :: ISC License (ISCL)": "ISC",
    "License :: OSI Approved :: Python Software Foundation License": "PSF-2.0",
    "License :: OSI Approved :: Mozilla Public License 2.0 (MPL 2.0)": "MPL-2.0",
    "License :: OSI Approved :: GNU General Public License v2 (GPLv2)": "GPL-2.0-only",
    "License :: OSI Approved :: GNU General Public License v2 or later (GPLv2+)": "GPL-2.0-or-later",
    "License :: OSI Approved :: GNU General Public License v3 (GPLv3)": "GPL-3.0-only",
    "License :: OSI Approved :: GNU General Public License v3 or later (GPLv3+)": "GPL-3.0-or-later",
    "License :: OSI Approved :: GNU Lesser General Public License v2 (LGPLv2)": "LGPL-2.0-only",
    "License :: OSI Approved :: GNU Lesser General Public License v2 or later (LGPLv2+)": "LGPL-2.0-or-later",
    "License :: OSI Approved :: GNU Lesser General Public License v3 (LGPLv3)": "LGPL-3.0-only",
    "License :: OSI Approved :: GNU Lesser General Public License v3 or later (LGPLv3+)": "LGPL-3.0-or-later",
    "License :: OSI Approved :: GNU Affero General Public License v3": "AGPL-3.0-only",
    "License :: OSI Approved :: GNU Affero General Public License v3 or later (AGPLv3+)": "AGPL-3.0-or-later",
    "License :: OSI Approved :: The Unlicense (Unlicense)": "Unlicense",
    "License :: OSI Approved :: zlib/libpng License": "Zlib",
    "License :: OSI Approved :: Boost Software License 1.0 (BSL-1.0)": "BSL-1.0",
    "License :: OSI Approved :: Eclipse Public License 2.0 (EPL-2.0)": "EPL-2.0",
    "License :: OSI Approved :: Universal Permissive License (UPL)": "UPL-1.0",
    "License :: CC0 1.0 Universal (CC0 1.0) Public Domain Dedication": "CC0-1.0",
}


@cache
def _licensing() -> Licensing:
    return get_spdx_licensing()


def spdx(text: str | None) -> License | None:
    """``text`` as a normalised SPDX expression, or ``None`` unless it is one (``MIT``, ``mit``,
    ``Apache-2.0 OR MIT``); free text ("BSD", "see LICENSE") is not guessed at."""
    if not text or len(text) > 200 or "\n" in text.strip():
        return None
    licensing, text = _licensing(), text.strip()
    try:
        # Parsed first: license-expression 30.x's validate() reports a parse error but fails with
        # AttributeError on any other ExpressionError, such as a quoted key ('License: "MIT"', as a
        # Debian python3 package of bookworm writes it).
        licensing.parse(text, strict=True)
    except ExpressionError:
        return None
    info = licensing.validate(text, strict=True)
    if info.errors or not info.normalized_expression:
        return None
    return License(str(info.normalized_expression))
