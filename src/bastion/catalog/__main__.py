"""``python -m bastion.catalog [OUTPUT]``: write the definition JSON schema (to stdout by default).

The checked-in copy is regenerated with ``python -m bastion.catalog docs/definition-schema.json``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from bastion.catalog._schema import render_schema


def main(argv: list[str]) -> int:
    if len(argv) > 1 or (argv and argv[0].startswith("-")):
        print("usage: python -m bastion.catalog [OUTPUT]", file=sys.stderr)
        return 2
    if argv:
        Path(argv[0]).write_text(render_schema(), encoding="utf-8")
    else:
        sys.stdout.write(render_schema())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
