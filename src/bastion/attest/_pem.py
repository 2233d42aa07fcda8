"""PEM armour (RFC 7468) for the block types ``cryptography`` does not read or write itself.

Hand-written because cosign's ``ENCRYPTED SIGSTORE PRIVATE KEY`` block holds JSON, not DER, so no
key-loading function accepts it; and public keys published by other tools may carry explanatory text
before the block (``certtool --pubkey-info`` output), which RFC 7468 section 2 allows parsers to skip.
"""

from __future__ import annotations

import base64
import binascii
import re

from bastion.errors import InputError

_LINE = 64  # RFC 7468 section 2: generators wrap base64 text at 64 characters, as Go's encoding/pem does.


def pem_encode(label: str, body: bytes) -> bytes:
    text = base64.b64encode(body).decode("ascii")
    lines = [text[i : i + _LINE] for i in range(0, len(text), _LINE)]
    return (
        f"-----BEGIN {label}-----\n" + "".join(f"{line}\n" for line in lines) + f"-----END {label}-----\n"
    ).encode("ascii")


def pem_blocks(data: bytes) -> list[tuple[str, bytes]]:
    """Every well-formed block in ``data`` as (label, body), in order; text outside blocks is skipped."""
    text = data.decode("ascii", errors="replace")
    found = []
    for match in re.finditer(
        r"-----BEGIN ([A-Z0-9 ]+)-----\r?\n(.*?)-----END \1-----", text, flags=re.DOTALL
    ):
        label, armoured = match.group(1), match.group(2)
        if ":" in armoured:  # RFC 1421 headers (Proc-Type, DEK-Info): legacy encryption we never read
            continue
        try:
            body = base64.b64decode("".join(armoured.split()), validate=True)
        except binascii.Error:
            continue
        found.append((label, body))
    return found


def pem_block(data: bytes, labels: tuple[str, ...], *, where: str) -> tuple[str, bytes]:
    """The first block whose label is one of ``labels``; a clear error when there is none."""
    blocks = pem_blocks(data)
    for label, body in blocks:
        if label in labels:
            return label, body
    seen = ", ".join(sorted({label for label, _ in blocks})) or "no PEM block"
    raise InputError(f"expected a PEM block of type {' or '.join(labels)}, found {seen}", where=where)
