"""Which data the vulnerability database holds, read without the database layer.

Every import that changes a record or the KEV catalogue sets a new token in the database's ``meta``
table, in the same transaction as the change (:class:`bastion.vuln._db.SqlVulnDatabase`). A build
labels the CVE-scan and OpenVEX attestations it signs with the token, and signs new ones when the
token differs from theirs; it asks through the standard library's sqlite3 (a few milliseconds),
so that a rebuild with nothing to do does not load SQLAlchemy.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

__all__ = ["DATA_KEY", "SCHEMA_VERSION", "data_version", "database_path"]

DATA_KEY = "data"  # meta key of the token
SCHEMA_VERSION = "2"  # meta key "schema"; bump, and migrate (_db._migrate) or rebuild, when a table changes


def database_path(home: Path) -> Path:
    """``BASTION_HOME/vuln.db``."""
    return home / "vuln.db"


def data_version(path: Path) -> str | None:
    """The token of the data in the SQLite database at ``path``; ``None`` when there is no database
    or no token yet (a database no import has changed since tokens were introduced)."""
    if not path.is_file():
        return None
    try:
        # A file: URI (percent-encoded, so any path works) to open it read-only.
        uri = f"{path.absolute().as_uri()}?mode=ro"
        with contextlib.closing(sqlite3.connect(uri, uri=True)) as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = ?", (DATA_KEY,)).fetchone()
    except sqlite3.Error:
        return None
    return str(row[0]) if row else None
