"""The python, npm, java and apk catalogers on real-format metadata, and the ownership rule."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from tests.conftest import run_cli

from bastion.config import Settings
from bastion.image import ImageTarget, open_target
from bastion.sbom import Package, PackageType, scan
from bastion.sbom._catalog import ApkCataloger, JavaArchiveCataloger, NpmCataloger, PythonCataloger

SITE = "/usr/lib/python3/dist-packages"


def write(root: Path, path: str, data: str | bytes) -> None:
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data.encode() if isinstance(data, str) else data)


def metadata(name: str, version: str, *extra: str) -> str:
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}", *extra]
    return "\n".join(lines) + "\n\nLong description: not a header.\nName: not-this\n"


def open_fs(root: Path, tmp_path: Path) -> ImageTarget:
    return open_target(f"fs://{root}", Settings(tmp_path / "home"))


def by_name(packages: list[Package]) -> dict[str, Package]:
    return {p.name: p for p in packages}


def test_python_dist_info_and_egg_info(tmp_path: Path) -> None:
    root = tmp_path / "root"
    site = "/opt/venv/lib/python3.11/site-packages"
    write(root, f"{site}/Zope.Interface-5.4.0.dist-info/METADATA", metadata(
        "Zope.Interface", "5.4.0", "License: ZPL 2.1", "Classifier: License :: OSI Approved :: Zope Public License",
        "Requires-Dist: setuptools", "Summary: Interfaces for Python", "Home-page: https://github.com/zopefoundation/zope.interface",
    ))  # fmt: skip
    write(root, f"{site}/Zope.Interface-5.4.0.dist-info/RECORD", (
        "zope/interface/__init__.py,sha256=abc,10\n"
        "Zope.Interface-5.4.0.dist-info/METADATA,,\n"
        "../../../bin/zif,sha256=def,5\n"
    ))  # fmt: skip
    write(root, f"{site}/zope/interface/__init__.py", "")
    write(root, "/opt/venv/bin/zif", "#!python\n")
    write(root, f"{site}/setuptools-68.0.0.dist-info/METADATA", metadata(
        "setuptools", "68.0.0", "License-Expression: MIT", "Author-email: PyPA <distutils-sig@python.org>"
    ))  # fmt: skip
    write(root, f"{site}/six-1.16.0.egg-info/PKG-INFO", metadata("six", "1.16.0", "License: MIT"))
    write(
        root,
        f"{site}/old_thing-0.1.egg-info",
        metadata("old_thing", "0.1", "Classifier: License :: OSI Approved :: MIT License"),
    )
    write(root, f"{site}/broken-1.dist-info/METADATA", "Metadata-Version: 2.1\nName: broken\n")
    with open_fs(root, tmp_path) as target:
        found = by_name(PythonCataloger().catalog(target))
    assert set(found) == {"Zope.Interface", "setuptools", "six", "old_thing"}
    zope = found["Zope.Interface"]
    assert zope.purl == "pkg:pypi/zope-interface@5.4.0"  # PEP 503
    assert zope.licenses == []  # "ZPL 2.1" is free text: not guessed
    assert zope.files == [
        "/opt/venv/bin/zif",
        f"{site}/Zope.Interface-5.4.0.dist-info/METADATA",
        f"{site}/zope/interface/__init__.py",
    ]
    assert zope.depends == [found["setuptools"].ref]
    assert zope.homepage == "https://github.com/zopefoundation/zope.interface"
    assert [lic.expression for lic in found["setuptools"].licenses] == ["MIT"]
    assert found["setuptools"].supplier == "PyPA <distutils-sig@python.org>"
    assert [lic.expression for lic in found["six"].licenses] == ["MIT"]
    assert [lic.expression for lic in found["old_thing"].licenses] == ["MIT"]  # from the classifier
    assert found["six"].locations[0].path == f"{site}/six-1.16.0.egg-info/PKG-INFO"


def test_a_dist_info_a_deb_installed_is_the_deb_but_a_vendored_copy_is_reported(tmp_path: Path) -> None:
    root = tmp_path / "root"
    write(root, "/etc/os-release", "ID=debian\nVERSION_ID=12\n")
    owned_meta = f"{SITE}/requests-2.28.1.dist-info/METADATA"
    vendored_meta = f"{SITE}/pip/_vendor/urllib3-1.26.12.dist-info/METADATA"
    write(root, owned_meta, metadata("requests", "2.28.1"))
    write(root, vendored_meta, metadata("urllib3", "1.26.12"))
    write(
        root,
        f"{SITE}/pip/_vendor/app.jar",
        _jar(
            {
                "META-INF/maven/org.x/bundled/pom.properties": "groupId=org.x\nartifactId=bundled\nversion=1.0\n"
            }
        ),
    )
    write(root, "/var/lib/dpkg/status", (
        "Package: python3-requests\nStatus: install ok installed\nArchitecture: all\nVersion: 2.28.1+dfsg-1\n"
        "Source: requests\n\n"
        "Package: python3-pip\nStatus: install ok installed\nArchitecture: all\nVersion: 23.0.1+dfsg-1\n"
        "Source: python-pip\n"
    ))  # fmt: skip
    write(root, "/var/lib/dpkg/info/python3-requests.list", f"/.\n{SITE}\n{owned_meta}\n")
    write(root, "/var/lib/dpkg/info/python3-pip.list", f"/.\n{vendored_meta}\n{SITE}/pip/_vendor/app.jar\n")
    # the same distribution installed by pip elsewhere is no deb's: reported
    write(
        root,
        "/usr/local/lib/python3.11/site-packages/requests-2.31.0.dist-info/METADATA",
        metadata("requests", "2.31.0"),
    )
    with open_fs(root, tmp_path) as target:
        sbom = scan(target)
    names = {(p.type, p.name, p.version) for p in sbom.packages}
    assert (PackageType.PYPI, "requests", "2.28.1") not in names  # owned by python3-requests
    assert (PackageType.PYPI, "requests", "2.31.0") in names
    assert (PackageType.PYPI, "urllib3", "1.26.12") in names  # vendored inside pip: kept
    assert (PackageType.MAVEN, "bundled", "1.0") in names  # a jar shipped in a deb: kept
    assert (PackageType.DEB, "python3-requests", "2.28.1+dfsg-1") in names
    keys = [(str(p.type), p.name, p.version) for p in sbom.packages]
    assert keys == sorted(keys)


def test_npm_packages_under_node_modules_and_installed_projects(tmp_path: Path) -> None:
    root = tmp_path / "root"
    app = "/srv/app"
    write(root, f"{app}/package.json", json.dumps({"name": "my-app", "version": "1.0.0"}))
    # A package.json with no node_modules or package-lock.json beside it is not an installed project.
    write(
        root, "/usr/share/doc/example/package.json", json.dumps({"name": "not-installed", "version": "1.0.0"})
    )
    write(
        root,
        f"{app}/node_modules/lodash/package.json",
        json.dumps({"name": "lodash", "version": "4.17.21", "license": "MIT"}),
    )
    write(root, f"{app}/node_modules/@babel/core/package.json", json.dumps({
        "name": "@babel/core", "version": "7.24.0", "license": "MIT", "author": {"name": "The Babel Team", "email": "team@babeljs.io"},
    }))  # fmt: skip
    write(root, f"{app}/node_modules/@babel/core/node_modules/semver/package.json", json.dumps({
        "name": "semver", "version": "6.3.1", "licenses": [{"type": "ISC"}],
    }))  # fmt: skip
    write(root, f"{app}/node_modules/lodash/fp/package.json", json.dumps({"main": "../fp.js"}))
    write(root, f"{app}/node_modules/noversion/package.json", json.dumps({"name": "noversion"}))
    write(root, f"{app}/node_modules/badjson/package.json", "{not json")
    with open_fs(root, tmp_path) as target:
        found = {(p.name, p.version): p for p in NpmCataloger().catalog(target)}
    assert set(found) == {
        ("my-app", "1.0.0"),
        ("lodash", "4.17.21"),
        ("@babel/core", "7.24.0"),
        ("semver", "6.3.1"),
    }
    babel = found[("@babel/core", "7.24.0")]
    assert babel.purl == "pkg:npm/%40babel/core@7.24.0" and babel.namespace == "babel"
    assert babel.supplier == "The Babel Team <team@babeljs.io>"
    assert [lic.expression for lic in found[("semver", "6.3.1")].licenses] == ["ISC"]


def _jar(members: dict[str, str | bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return out.getvalue()


def test_java_archives_with_nested_jars(tmp_path: Path) -> None:
    root = tmp_path / "root"
    inner = _jar(
        {
            "META-INF/maven/com.google.guava/guava/pom.properties": "#Generated\ngroupId=com.google.guava\nartifactId=guava\nversion=32.1.2-jre\n"
        }
    )
    innermost = _jar(
        {
            "META-INF/MANIFEST.MF": "Manifest-Version: 1.0\r\nImplementation-Title: tiny\r\nImplementation-Vendor-Id: org.tiny\r\nImplementation-Version: 0.9\r\n"
        }
    )
    nested = _jar(
        {
            "META-INF/MANIFEST.MF": "Manifest-Version: 1.0\nBundle-SymbolicName: org.acme.lib;singleton:=true\nBundle-Version: 2.0.1\n",
            "lib/tiny.jar": innermost,
        }
    )
    war = _jar({
        "META-INF/maven/com.acme/shop/pom.properties": "groupId=com.acme\nartifactId=shop\nversion=3.1\n",
        "WEB-INF/lib/guava-32.1.2-jre.jar": inner,
        "WEB-INF/lib/acme.jar": nested,
        "WEB-INF/lib/corrupt.jar": b"not a zip",
    })  # fmt: skip
    write(root, "/opt/shop.war", war)
    write(root, "/opt/lib/commons-io-2.15.1.jar", _jar({"META-INF/MANIFEST.MF": "Manifest-Version: 1.0\n"}))
    with open_fs(root, tmp_path) as target:
        found = {p.purl: p.locations[0].path for p in JavaArchiveCataloger().catalog(target)}
    assert found == {
        "pkg:maven/com.acme/shop@3.1": "/opt/shop.war",
        "pkg:maven/com.google.guava/guava@32.1.2-jre": "/opt/shop.war:WEB-INF/lib/guava-32.1.2-jre.jar",
        "pkg:maven/org.acme/org.acme.lib@2.0.1": "/opt/shop.war:WEB-INF/lib/acme.jar",
        "pkg:maven/org.tiny/tiny@0.9": "/opt/shop.war:WEB-INF/lib/acme.jar:lib/tiny.jar",
        "pkg:maven/commons-io@2.15.1": "/opt/lib/commons-io-2.15.1.jar",  # from the file name
    }


APK_DB = """\
C:Q1Jv7dy8ZUBKK4Tyn9Oy6Wv2pcY8c=
P:musl
V:1.2.4-r2
A:x86_64
S:383152
I:622592
T:the musl c library (libc) implementation
U:https://musl.libc.org/
L:MIT
o:musl
m:Timo Teräs <timo.teras@iki.fi>
t:1697049236
p:so:libc.musl-x86_64.so.1=1
F:lib
R:ld-musl-x86_64.so.1
a:0:0:755
Z:Q1n8nb3l1X1Q1n8nb3l1X1Q1n8nb3l1X1=
R:libc.musl-x86_64.so.1

C:Q1Xs5ZfVq3WqzZ1Xs5ZfVq3WqzZ1X=
P:libcrypto3
V:3.1.4-r1
A:x86_64
T:Crypto library from openssl
U:https://www.openssl.org/
L:Apache-2.0
o:openssl
m:Ariadne Conill <ariadne@dereferenced.org>
D:so:libc.musl-x86_64.so.1
F:usr/lib
R:libcrypto.so.3
"""


def test_apk_installed_database(tmp_path: Path) -> None:
    root = tmp_path / "root"
    write(root, "/lib/apk/db/installed", APK_DB)
    write(root, "/etc/os-release", 'NAME="Alpine Linux"\nID=alpine\nVERSION_ID=3.18.4\n')
    write(root, "/lib/ld-musl-x86_64.so.1", "ELF")
    write(root, "/usr/lib/libcrypto.so.3", "ELF")
    with open_fs(root, tmp_path) as target:
        found = by_name(ApkCataloger().catalog(target))
    crypto, musl = found["libcrypto3"], found["musl"]
    assert (
        crypto.purl == "pkg:apk/alpine/libcrypto3@3.1.4-r1?arch=x86_64&distro=alpine-3.18.4&upstream=openssl"
    )
    assert musl.purl == "pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64&distro=alpine-3.18.4"
    assert crypto.depends == [musl.ref]  # through musl's p:so:libc.musl-x86_64.so.1
    assert musl.files == ["/lib/ld-musl-x86_64.so.1"]  # listed files that exist
    assert crypto.files == ["/usr/lib/libcrypto.so.3"]
    assert [lic.expression for lic in crypto.licenses] == ["Apache-2.0"]
    assert crypto.supplier == "Ariadne Conill <ariadne@dereferenced.org>"


@pytest.mark.network
def test_real_wheels_installed_by_pip(tmp_path: Path) -> None:
    """Real dist-info directories, as pip writes them, from PyPI."""
    site = tmp_path / "root/usr/local/lib/python3.11/site-packages"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site), "six==1.16.0", "idna==3.7"],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    with open_fs(tmp_path / "root", tmp_path) as target:
        found = {p.purl: p for p in PythonCataloger().catalog(target)}
    assert set(found) == {"pkg:pypi/six@1.16.0", "pkg:pypi/idna@3.7"}
    assert "/usr/local/lib/python3.11/site-packages/six.py" in found["pkg:pypi/six@1.16.0"].files
    assert [lic.expression for lic in found["pkg:pypi/six@1.16.0"].licenses] == ["MIT"]


@pytest.mark.parametrize("licence", ['"MIT"', "'MIT'", "MIT OR", "Classpath-exception-2.0"])
def test_a_licence_field_that_is_no_spdx_expression_is_left_out(tmp_path: Path, licence: str) -> None:
    """Issue 19: bookworm's python3-pymysql writes ``License: "MIT"`` (a quoted key); license-expression's
    validate() raised AttributeError on it, so building an image with that package stopped at exit 3."""
    root = tmp_path / "root"
    write(
        root, f"{SITE}/PyMySQL-1.0.2.egg-info/PKG-INFO", metadata("PyMySQL", "1.0.2", f"License: {licence}")
    )
    result = run_cli("sbom", f"fs://{root}", "--format", "spdx-json", home=tmp_path / "home")
    assert result.code == 0, result.stderr
    (package,) = [p for p in json.loads(result.stdout)["packages"] if p["name"] == "PyMySQL"]
    assert package["licenseDeclared"] == "NOASSERTION"
