"""Copy the real, public data the tests use into tests/data/, from a checkout of the project's shared
data folder (its README names each file's origin and licence; tests/data/README.md repeats them).

Usage: python3 tests/data/make_subset.py SOURCE_DATA_DIR

Files are copied unchanged, except two cut down to keep the repository small (records themselves are
never edited):
- ``osv-pypi/vulns/``: only the advisories in :data:`ADVISORIES`, each kept for the reason given there;
- ``kev/known_exploited_vulnerabilities.json``: the first :data:`KEV_FIRST` entries (the newest) and
  every entry whose cveID is an alias of a kept advisory; ``count`` is set to the entries kept.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent

WHOLE = (
    "osv-pypi/LICENSE",
    "debian-tracker/tracker-json-sample.json",
    "openvex/node.openvex.json",
    "schemas/openvex_json_schema.json",
    "sigstore-interop/model-signing-p384-pub.pem",
    "sigstore-interop/model-signing-v0.3.1-p384.sigstore.json",
    "sigstore-interop/model-signing-v1.0.0-p384.sigstore.json",
    "sigstore-interop/model-signing-v1.0.1-p384.sigstore.json",
    "sigstore-interop/model-signing-v1.1.0-p384.sigstore.json",
    "sigstore-interop/sigstore-go-dsse-2sigs.sigstore.json",
    "sigstore-interop/sigstore-go-dsse-keyless.sigstore.json",
)

ADVISORIES = {
    "pip": "every pip advisory: the findings on pip 21.0 and 23.0, and whole-directory imports",
    "setuptools": "every setuptools advisory: the finding on setuptools 65.5.0",
    "apache-airflow/PYSEC-2020-14.yaml": "names a CVE in the KEV catalogue (CVE-2020-11978)",
    "binderhub/PYSEC-2021-371.yaml": "a range that is not a PEP 440 version ('0.2.0-n653'): skipped",
    "steam/PYSEC-2019-125.yaml": "a range that is not a PEP 440 version (a date): skipped",
    "loguru/PYSEC-2022-15.yaml": "a withdrawn advisory",
}

KEV_FIRST = 20
KEV = "kev/known_exploited_vulnerabilities.json"


def main(source: Path) -> None:
    for name in WHOLE:
        (HERE / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / name, HERE / name)

    vulns, aliases = HERE / "osv-pypi" / "vulns", set()
    shutil.rmtree(vulns, ignore_errors=True)
    for name in ADVISORIES:
        origin = source / "osv-pypi" / "vulns" / name
        for path in sorted(origin.glob("*.yaml")) if origin.is_dir() else [origin]:
            target = vulns / path.relative_to(source / "osv-pypi" / "vulns")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
            aliases |= set(yaml.safe_load(path.read_text()).get("aliases") or [])

    catalogue = json.loads((source / KEV).read_text())
    entries = catalogue["vulnerabilities"]
    catalogue["vulnerabilities"] = [
        entry for i, entry in enumerate(entries) if i < KEV_FIRST or entry["cveID"] in aliases
    ]
    catalogue["count"] = len(catalogue["vulnerabilities"])
    (HERE / KEV).parent.mkdir(parents=True, exist_ok=True)
    (HERE / KEV).write_text(json.dumps(catalogue, indent=4) + "\n")


if __name__ == "__main__":
    if len(sys.argv) != 2 or not Path(sys.argv[1], KEV).is_file():
        sys.exit("usage: python3 tests/data/make_subset.py SOURCE_DATA_DIR (the shared data folder)")
    main(Path(sys.argv[1]))
