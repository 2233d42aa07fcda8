from __future__ import annotations

from pathlib import Path

import pytest

from bastion.vuln import SqlVulnDatabase, import_paths, open_database
from tests.vuln.helpers import KEV, PYPI, TRACKER


@pytest.fixture(scope="session")
def real_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A BASTION_HOME whose database holds the real PyPI advisories, the KEV catalogue and the tracker
    sample (imported once per session)."""
    home = tmp_path_factory.mktemp("vulnhome")
    database = open_database(home)
    import_paths(database, [PYPI, KEV, TRACKER])
    database.close()
    return home


@pytest.fixture
def real_db(real_home: Path) -> SqlVulnDatabase:
    return open_database(real_home)
