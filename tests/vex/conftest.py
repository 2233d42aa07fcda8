"""VEX tests use the vulnerability tests' database of real advisories (imported once per session)."""

from tests.vuln.conftest import real_db, real_home

__all__ = ["real_db", "real_home"]
