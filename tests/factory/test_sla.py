"""The CVE clock through ``bastion sla``: real vulnerability data (tests/data) imported with ``bastion
db import``, real images in the local store (a Debian package's status.d paragraph and Python
distributions), publications recorded in the factory database as the factory records them; the
clock opened by the first scan, closed by the publication of a fixed image, measured against the
policy; on SQLite, and on a real PostgreSQL 15 for the library path."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert

from bastion import _clock as clock
from bastion.config import Settings
from bastion.factory import observe, open_state, tables
from bastion.oci import Store
from bastion.vuln import load_sbom, require_database, scan_sbom
from tests.factory.test_state import database_url_for
from tests.image.layouts import E, add_image
from tests.registry.conftest import RegistryProcess
from tests.vuln.helpers import KEV, PYPI, TRACKER, run_vuln

OS_RELEASE = b'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\nID=debian\n'  # fmt: skip
# CVE-2017-6507 (the tracker sample): apparmor fixed in 2.11.0-3 for bookworm, which 3.0.8-3 carries.
APPARMOR_FIXED = "CVE-2017-6507"
# PYSEC-2020-14 (apache-airflow < 1.10.11rc1) names CVE-2020-11978, which is in the KEV sample.
AIRFLOW_KEV = "CVE-2020-11978"


def _image(store: Store, tag: str, *, apparmor: str, pip: str, airflow: str) -> str:
    control = (
        f"Package: apparmor\nStatus: install ok installed\nPriority: optional\nSection: admin\n"
        f"Installed-Size: 2000\nMaintainer: Debian AppArmor Team <pkg-apparmor-team@lists.alioth.debian.org>\n"
        f"Architecture: amd64\nVersion: {apparmor}\nDescription: user-space parser utility for AppArmor\n"
    )
    entries = [
        E("etc/os-release", data=OS_RELEASE),
        E("var/lib/dpkg/status.d/apparmor", data=control.encode()),
    ]
    for name, version in (("pip", pip), ("apache_airflow", airflow)):
        metadata = f"Metadata-Version: 2.1\nName: {name.replace('_', '-')}\nVersion: {version}\n"
        entries.append(
            E(f"usr/lib/python3/dist-packages/{name}-{version}.dist-info/METADATA", data=metadata.encode())
        )
    descriptor = add_image(store, [entries])
    store.tag(tag, descriptor)
    return descriptor.digest


def _publish(url: str, home: Path, image: str, reference: str, digest: str, at: datetime) -> None:
    """Record a build and its publication as ``factory run`` does."""
    stamp = clock.rfc3339(at)
    build = {"image": image, "recipe_digest": "sha256:" + "0" * 64, "image_digest": digest,
             "status": "published", "started_at": stamp}  # fmt: skip
    with open_state(Settings(home), url) as state, state.engine.begin() as connection:
        build_id = connection.execute(insert(tables()["builds"]).values(**build)).inserted_primary_key[0]
        publication = {"build_id": build_id, "image": image, "reference": reference, "digest": digest,
                       "tags": '["1"]', "published_at": stamp}  # fmt: skip
        connection.execute(insert(tables()["publications"]).values(**publication))


@pytest.fixture(scope="module")
def vuln_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A BASTION_HOME with the real advisories imported and two images of ``app`` in its store: 1 with
    apparmor, pip and airflow affected, 2 with the fixed versions (apparmor 3.0.8-3 still carries the
    unimportant CVE-2016-1585, which has no fix)."""
    home = tmp_path_factory.mktemp("slahome")
    result = run_vuln("db", "import", str(PYPI), str(KEV), str(TRACKER), home=home)
    assert result.code == 0, result.stderr
    store = Store(Settings(home).store_dir)
    _image(store, "bastion/app:1", apparmor="2.10.95-8", pip="21.0", airflow="1.10.10")
    _image(store, "bastion/app:2", apparmor="3.0.8-3", pip="23.3", airflow="1.10.12")
    return home


def _digest(home: Path, tag: str) -> str:
    from bastion.oci import find_in_store

    found = find_in_store(Settings(home).store_dir, tag)
    assert found is not None
    return found[1].digest


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'factory.db'}"
    return database_url_for(request.getfixturevalue("fresh_postgres"))


def _sla(*args: str, home: Path, url: str) -> tuple[int, str, str]:
    result = run_vuln("sla", *args, home=home, env={"BASTION_FACTORY_DB": url})
    return result.code, result.stdout, result.stderr


def _items(home: Path, url: str, *extra: str) -> dict[str, dict[str, object]]:
    code, out, err = _sla("report", "--format", "json", *extra, home=home, url=url)
    assert code == 0, err
    return {item["vulnerability"]: item for item in json.loads(out)["items"]}


def test_the_clock_opens_at_the_first_scan_and_closes_at_the_fixed_publication(
    vuln_home: Path, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'factory.db'}"
    old, new = _digest(vuln_home, "bastion/app:1"), _digest(vuln_home, "bastion/app:2")
    _publish(url, vuln_home, "app", "bastion/app", old, clock.now() - timedelta(hours=1))
    before = clock.rfc3339()
    code, _, err = _sla("rescan", home=vuln_home, url=url)
    assert code == 0, err
    assert "1 published images re-scanned, 0 failed" in err and "5 open, 5 opened" in err
    items = _items(vuln_home, url)
    apparmor = items[APPARMOR_FIXED]
    assert apparmor["status"] == "open" and apparmor["packages"] == "apparmor"
    assert apparmor["fixed_version"] == "2.11.0-3" and apparmor["first_seen_at"] >= before  # type: ignore[operator]
    # Bastion's data stores no date for a fix: the import that first showed it, never after the scan.
    assert (
        apparmor["fix_available_at"] is not None and apparmor["fix_available_at"] <= apparmor["first_seen_at"]
    )  # type: ignore[operator]
    assert items[AIRFLOW_KEV]["kev"] is True and items["CVE-2016-1585"]["fix_available_at"] is None
    assert (
        _sla("rescan", home=vuln_home, url=url)[2].count("0 opened, 0 closed, 0 updated") == 1
    )  # idempotent

    while clock.rfc3339() <= str(apparmor["first_seen_at"]):  # the publication comes after the scan
        time.sleep(0.2)
    published = clock.now()
    _publish(url, vuln_home, "app", "bastion/app", new, published)
    code, _, err = _sla("rescan", home=vuln_home, url=url)
    assert code == 0 and "1 open, 0 opened, 4 closed" in err, err
    assert "findings changed, attestations not refreshed" in err
    items = _items(vuln_home, url)
    for closed in (APPARMOR_FIXED, AIRFLOW_KEV, "CVE-2021-3572", "CVE-2023-5752"):
        item = items[closed]
        assert item["status"] == "closed" and item["closed_at"] == clock.rfc3339(published), item
        assert item["closed_by_digest"] == new
        seen = datetime.fromisoformat(str(item["first_seen_at"]).replace("Z", "+00:00"))
        assert item["open_for_seconds"] == int((published - seen).total_seconds()) > 0
    assert items["CVE-2016-1585"]["status"] == "open"
    # Nothing open is past its deadline: the unimportant one has no fix, so no clock runs.
    assert _sla("report", "--exit-code", home=vuln_home, url=url)[0] == 0
    code, table, _ = _sla("report", home=vuln_home, url=url)
    assert APPARMOR_FIXED in table and f"by {new[:19]}" in table and "no deadline" in table
    code, markdown, _ = _sla("report", "--format", "markdown", "--image", "app", home=vuln_home, url=url)
    assert f"| app | {APPARMOR_FIXED} | unknown | apparmor |" in markdown
    assert _sla("report", "--image", "other", home=vuln_home, url=url)[1].strip() == "no CVE clock items"


def test_a_breach_fails_exit_code_and_the_policy_decides(vuln_home: Path, url: str, tmp_path: Path) -> None:
    old, new = _digest(vuln_home, "bastion/app:1"), _digest(vuln_home, "bastion/app:2")
    now = clock.now()
    settings = Settings(vuln_home)
    database = require_database(settings)
    try:
        scans = {d: scan_sbom(load_sbom(f"bastion/app@{d}", settings), database) for d in (old, new)}
    finally:
        database.close()
    _publish(url, vuln_home, "app", "bastion/app", old, now - timedelta(days=20))
    with open_state(settings, url) as state:
        # The factory's call after the publication, ten days ago (the library takes the time).
        first = observe(state, "app", old, scans[old], now=now - timedelta(days=10), published=True)
        again = observe(state, "app", old, scans[old], now=now - timedelta(days=10), published=True)
    assert len(first.opened) == 5 and first.changed and not again.changed
    code, _, err = _sla("report", "--exit-code", home=vuln_home, url=url)
    assert code == 1 and f"past their deadline (first: app {AIRFLOW_KEV})" in err, err
    items = _items(vuln_home, url)
    assert items[AIRFLOW_KEV]["deadline_days"] == 1 and items[AIRFLOW_KEV]["breach"] is True
    assert (
        items["CVE-2023-5752"]["severity"] == "low" and items["CVE-2023-5752"]["breach"] is False
    )  # 30 days

    lenient = tmp_path / "sla.yaml"
    lenient.write_text("# a month for everything exploited\nkev: 30\ncritical: 30\nhigh: 30\n")
    assert _sla("report", "--exit-code", "--policy", str(lenient), home=vuln_home, url=url)[0] == 0
    strict = tmp_path / "strict.yaml"
    strict.write_text("low: 5\n")
    assert _items(vuln_home, url, "--policy", str(strict))["CVE-2023-5752"]["breach"] is True

    # The fixed image published five days ago: closed then, the KEV item late (due after one day).
    _publish(url, vuln_home, "app", "bastion/app", new, now - timedelta(days=5))
    with open_state(settings, url) as state:
        fixed = observe(state, "app", new, scans[new], now=now - timedelta(days=5), published=True)
    assert set(fixed.closed) == {APPARMOR_FIXED, AIRFLOW_KEV, "CVE-2021-3572", "CVE-2023-5752"}
    assert _sla("report", "--exit-code", home=vuln_home, url=url)[0] == 0
    kev = _items(vuln_home, url)[AIRFLOW_KEV]
    assert kev["late"] is True and kev["breach"] is False and kev["open_for_seconds"] == 5 * 86400


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("critical: 7\nhgih: 3\n", ":2: hgih: unknown field"),
        ("high: seven\n", ":1: high: 'seven': days are a number"),
        ("kev: -1\n", ":1: kev: -1: days are a number"),
        ("low: true\n", ":1: low: True: days are a number"),
        ("medium: 1e400\n", ":1: medium:"),
        ("medium: .nan\n", ":1: medium:"),
        ("critical: [1, 2]\n", ":1: critical:"),
        ("- critical\n", ":1: the SLA policy is a list"),
        ("critical: 7\n  high: [\n", "not valid YAML"),
        ("a: &a [1,1,1,1,1,1,1,1,1,1]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\n",
         "expands to more than"),
        ("x: " + "[" * 100 + "]" * 100 + "\n", "nests deeper than"),
    ],
)  # fmt: skip
def test_hostile_policy_files_are_refused_with_one_line(
    vuln_home: Path, tmp_path: Path, text: str, expected: str
) -> None:
    policy = tmp_path / "sla.yaml"
    policy.write_text(text)
    code, out, err = _sla(
        "report", "--policy", str(policy), home=vuln_home, url=f"sqlite:///{tmp_path / 'f.db'}"
    )
    assert code == 2 and out == "", err
    assert len(err.strip().splitlines()) == 1 and str(policy) in err and expected in err, err


def test_unreadable_policy_files_are_refused(vuln_home: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'f.db'}"
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"kev: \xff\xfe\n")
    big = tmp_path / "big.yaml"
    big.write_text("# padding\n" * 10_000)
    for path, expected in (
        (binary, "not UTF-8"),
        (big, "bytes, more than"),
        (tmp_path / "none.yaml", "cannot read"),
    ):
        code, _, err = _sla("report", "--policy", str(path), home=vuln_home, url=url)
        assert code == 2 and expected in err and len(err.strip().splitlines()) == 1, err


def test_rescan_reports_an_image_it_cannot_open_and_goes_on(vuln_home: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'factory.db'}"
    code, _, err = _sla("rescan", home=vuln_home, url=url)
    assert code == 0 and "0 published images re-scanned" in err
    _publish(url, vuln_home, "gone", "bastion/gone", "sha256:" + "1" * 64, clock.now())
    _publish(url, vuln_home, "app", "bastion/app", _digest(vuln_home, "bastion/app:1"), clock.now())
    code, _, err = _sla("rescan", home=vuln_home, url=url)
    assert code == 2, err
    assert "gone@sha256:111111111111" in err and "app@sha256:" in err and "5 opened" in err
    assert "1 of 2 published images could not be re-scanned" in err
    assert set(_items(vuln_home, url)) >= {APPARMOR_FIXED}
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = _sla("rescan", home=empty, url=url)
    assert code == 2 and "no vulnerability database" in err


def test_rescan_reattests_the_published_image_and_pushes_the_new_attestations(
    tmp_path: Path, registry: RegistryProcess
) -> None:
    """A publication in a loopback docker-registry: the re-scan that opens its clock runs the
    pipeline's refresh stage on the stored image and pushes the new CVE scan beside its digest."""
    home = tmp_path / "home"
    assert run_vuln("db", "import", str(PYPI), str(KEV), str(TRACKER), home=home).code == 0
    digest = _image(
        Store(Settings(home).store_dir), "bastion/app:1", apparmor="2.10.95-8", pip="21.0", airflow="1.10.10"
    )
    remote = f"{registry.host}/bastion/app"
    pushed = run_vuln("push", "bastion/app:1", f"{remote}:1", home=home)
    assert pushed.code == 0, pushed.stderr
    before = run_vuln("attest", "list", f"registry://{remote}@{digest}", "--format", "json", home=home)
    assert "https://bastion.invalid/cve-scan" not in before.stdout
    url = f"sqlite:///{tmp_path / 'factory.db'}"
    _publish(url, home, "app", remote, digest, clock.now() - timedelta(hours=1))
    code, _, err = _sla("rescan", home=home, url=url)
    assert code == 0 and "re-attested" in err, err
    after = run_vuln("attest", "list", f"registry://{remote}@{digest}", "--format", "json", home=home)
    assert after.code == 0, after.stderr
    assert "openvex" in after.stdout and after.stdout != before.stdout
    verified = run_vuln("attest", "get", f"registry://{remote}@{digest}", "--predicate-type",
                        "https://openvex.dev/ns/v0.2.0", "--verify", "--key", str(home / "keys" / "bastion.pub"),
                        home=home)  # fmt: skip
    assert verified.code == 0, verified.stderr
