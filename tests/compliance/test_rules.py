"""Every rule, on a crafted image that passes them all, then with one problem planted at a time: the
image must fail exactly the rules the problem breaks, with the problem in the evidence."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from bastion.compliance import RULES, ComplianceResult, Result, compliance, load_profile
from bastion.image import FileKind
from tests.compliance.crafted import PASSWD, Crafted, clean_image, private_key_pem

Plant = Callable[[Crafted], None]


def _failed(result: ComplianceResult) -> dict[str, list[str]]:
    return {
        r.rule.name: [r.message, *r.evidence]
        for r in result.results
        if r.result in (Result.FAIL, Result.ERROR)
    }


def _run(image: Crafted) -> ComplianceResult:
    with image.target() as target:
        return compliance(target)


def test_the_clean_image_passes_every_rule(tmp_path: Path) -> None:
    result = _run(clean_image(tmp_path))
    assert _failed(result) == {}
    by_name = {r.rule.name: r.result for r in result.results}
    # Everything the crafted image can show is checked; only what it does not claim is not applicable.
    not_applicable = {n for n, r in by_name.items() if r is Result.NOTAPPLICABLE}
    assert not_applicable == {
        "packages_signed_sources",  # no APT in the image
        "crypto_fips_provider",  # no FIPS claim
        *(n for n in RULES if n.startswith("host_")),
    }
    assert set(by_name) == set(RULES)


def _env(image: Crafted, *pairs: str) -> None:
    image.image_config["Env"] = [*image.image_config["Env"], *pairs]


def _add_user(image: Crafted, line: str) -> None:
    (image.root / "etc/passwd").write_text((image.root / "etc/passwd").read_text() + line + "\n")


CASES: list[tuple[str, Plant, set[str], str]] = [
    # (case, plant, the rules that must fail, text the evidence must show)
    ("no user", lambda i: i.image_config.pop("User"), {"image_user_nonroot"}, "User="),
    ("user root", lambda i: i.image_config.update(User="root"), {"image_user_nonroot"}, "uid 0"),
    ("user 0:0", lambda i: i.image_config.update(User="0:0"), {"image_user_nonroot"}, "uid 0"),
    ("unknown user", lambda i: i.image_config.update(User="ghost"), {"image_user_nonroot"}, "User=ghost"),
    ("password in Env", lambda i: _env(i, "DB_PASSWORD=hunter2"), {"image_env_no_secrets"}, "DB_PASSWORD"),
    ("AWS key in Env", lambda i: _env(i, "KEYID=AKIAIOSFODNN7EXAMPLE"), {"image_env_no_secrets"}, "KEYID"),
    (
        "token in Env",
        lambda i: _env(i, "X=q8Vd2LmT9zK4rYw7Pb1NcE6hJ3uGf0Sa"),
        {"image_env_no_secrets"},
        "bits",
    ),
    (
        "port 80",
        lambda i: i.image_config.update(ExposedPorts={"80/tcp": {}}),
        {"image_no_privileged_ports"},
        "80/tcp",
    ),
    (
        "port 3389",
        lambda i: i.image_config.update(ExposedPorts={"3389/tcp": {}}),
        {"image_no_remote_access_ports"},
        "3389/tcp",
    ),
    (
        "port 22",
        lambda i: i.image_config.update(ExposedPorts={"22/tcp": {}}),
        {"image_no_remote_access_ports", "image_no_privileged_ports"},
        "22/tcp",
    ),
    (
        "volume /etc",
        lambda i: i.image_config.update(Volumes={"/etc/": {}}),
        {"image_no_system_volumes"},
        "/etc",
    ),
    ("no healthcheck", lambda i: i.image_config.pop("Healthcheck"), {"image_healthcheck"}, "Healthcheck"),
    (
        "healthcheck NONE",
        lambda i: i.image_config.update(Healthcheck={"Test": ["NONE"]}),
        {"image_healthcheck"},
        "Healthcheck",
    ),
    (
        "no version label",
        lambda i: i.image_config["Labels"].pop("org.opencontainers.image.version"),
        {"image_provenance_labels"},
        "org.opencontainers.image.version missing",
    ),
    ("malformed passwd", lambda i: _add_user(i, "broken:x:1"), {"accounts_files_valid"}, "/etc/passwd:4"),
    (
        "uid-0 user",
        lambda i: _add_user(i, "toor:x:0:0::/nonexistent:/usr/sbin/nologin"),
        {"accounts_only_root_uid0", "accounts_unique_ids"},
        "toor",
    ),
    (
        "empty password",
        lambda i: i.write(
            "/etc/shadow", "root:*:1:0:99999:7:::\nnonroot::1:0:99999:7:::\n", mode=0o640, gid=42
        ),
        {"accounts_no_empty_passwords"},
        "nonroot",
    ),
    (
        "password hash",
        lambda i: i.write("/etc/shadow", "root:$6$salt$c2VjcmV0:1:0:99999:7:::\n", mode=0o640, gid=42),
        {"accounts_passwords_locked"},
        "root",
    ),
    (
        "duplicate group name",
        lambda i: i.write(
            "/etc/group", "root:x:0:\nshadow:x:42:\nnonroot:x:65532:\nnonroot:x:4000:\nnogroup:x:65534:\n"
        ),
        {"accounts_unique_names"},
        "group nonroot",
    ),
    (
        "shared uid",
        lambda i: _add_user(i, "other:x:65532:65532::/nonexistent:/usr/sbin/nologin"),
        {"accounts_unique_ids"},
        "uid 65532",
    ),
    (
        "missing primary group",
        lambda i: _add_user(i, "app:x:1000:4242::/nonexistent:/usr/sbin/nologin"),
        {"accounts_primary_groups_exist"},
        "gid 4242",
    ),
    (
        "login shell",
        lambda i: i.write(
            "/etc/passwd", PASSWD.replace("root:/root:/usr/sbin/nologin", "root:/root:/bin/bash")
        ),
        {"accounts_nologin_shells"},
        "/bin/bash",
    ),
    (
        "sudo",
        lambda i: i.write("/usr/bin/sudo", b"sudo", mode=0o755),
        {"accounts_no_privilege_escalation"},
        "/usr/bin/sudo",
    ),
    (
        "readable shadow",
        lambda i: i.set("/etc/shadow", mode=0o644),
        {"accounts_file_permissions"},
        "/etc/shadow",
    ),
    (
        "world-writable file",
        lambda i: i.write("/srv/data", "x", mode=0o666),
        {"files_no_world_writable"},
        "/srv/data",
    ),
    (
        "open shared dir",
        lambda i: i.mkdir("/srv/shared", mode=0o1777),
        {"files_no_world_writable"},
        "/srv/shared",
    ),
    (
        "/tmp not sticky",
        lambda i: i.set("/tmp", mode=0o777),
        {"files_world_writable_dirs_sticky"},
        "/tmp mode 0777",
    ),
    ("unowned file", lambda i: i.write("/srv/orphan", "x", uid=4321), {"files_valid_owner"}, "/srv/orphan"),
    ("unknown group", lambda i: i.write("/srv/orphan", "x", gid=4321), {"files_valid_group"}, "gid 4321"),
    ("setuid program", lambda i: i.set("/usr/bin/python3", mode=0o4755), {"files_no_setid"}, "mode 4755"),
    (
        "setuid shell",
        lambda i: i.write("/usr/bin/sh", b"\x7fELF sh", mode=0o4755),
        {"files_no_setid", "packages_no_shells"},
        "/usr/bin/sh",
    ),
    (
        "file capability",
        lambda i: i.set("/usr/bin/python3", xattrs={"security.capability": b"\x01\x00\x00\x02" + bytes(16)}),
        {"files_no_capabilities"},
        "/usr/bin/python3",
    ),
    (
        "lib not root's",
        lambda i: i.set("/usr/lib/libssl.so.3", uid=65532),
        {"files_system_owned_by_root"},
        "libssl",
    ),
    (
        "writable lib",
        lambda i: i.set("/usr/lib/libssl.so.3", mode=0o664),
        {"files_system_not_writable"},
        "mode 0664",
    ),
    (
        "device outside /dev",
        lambda i: i.set("/srv/sda", kind=FileKind.BLOCK_DEVICE, mode=0o660, size=0),
        {"files_no_devices_outside_dev"},
        "/srv/sda",
    ),
    ("open home", lambda i: i.set("/home/nonroot", mode=0o755), {"files_home_dirs_mode"}, "/home/nonroot"),
    ("home of root", lambda i: i.set("/home/nonroot", uid=0), {"files_home_dirs_owned"}, "nonroot"),
    (
        "bash",
        lambda i: i.write("/usr/bin/bash", b"\x7fELF bash", mode=0o755),
        {"packages_no_shells"},
        "/usr/bin/bash",
    ),
    (
        "dpkg",
        lambda i: i.write("/usr/bin/dpkg", b"\x7fELF dpkg", mode=0o755),
        {"packages_no_package_managers"},
        "dpkg",
    ),
    (
        "sshd",
        lambda i: i.write("/usr/sbin/sshd", b"\x7fELF sshd", mode=0o755),
        {"packages_no_remote_access_daemons"},
        "sshd",
    ),
    (
        "gcc",
        lambda i: i.write("/usr/bin/gcc-12", b"\x7fELF gcc", mode=0o755),
        {"packages_no_compilers_debuggers"},
        "gcc-12",
    ),
    (
        "trusted=yes",
        lambda i: i.write(
            "/etc/apt/sources.list.d/x.list",
            "deb [trusted=yes arch=amd64] http://repo.invalid/ stable main\n",
        ),
        {"packages_signed_sources"},
        "x.list:1: trusted=yes",
    ),
    (
        "Allow-Insecure",
        lambda i: i.write(
            "/etc/apt/sources.list.d/x.sources",
            "Types: deb\nURIs: http://repo.invalid/\nSuites: stable\nComponents: main\nAllow-Insecure: yes\n",
        ),
        {"packages_signed_sources"},
        "Allow-Insecure",
    ),
    (
        "AllowUnauthenticated",
        lambda i: i.write("/etc/apt/apt.conf.d/99x", 'APT::Get::AllowUnauthenticated "true";\n'),
        {"packages_signed_sources"},
        "99x:1",
    ),
    (
        "cached .deb",
        lambda i: i.write("/var/cache/apt/archives/a_1_amd64.deb", "!<arch>"),
        {"packages_no_caches"},
        "a_1_amd64.deb",
    ),
    (
        "package lists",
        lambda i: i.write("/var/lib/apt/lists/x_Packages", "P"),
        {"packages_no_caches"},
        "x_Packages",
    ),
    (
        "no dpkg database",
        lambda i: i.remove("/var/lib/dpkg/status.d/python3"),
        {"packages_database_present"},
        "status.d",
    ),
    (
        "private key",
        lambda i: i.write("/srv/app/key.pem", private_key_pem()),
        {"secrets_no_private_keys"},
        "/srv/app/key.pem",
    ),
    (
        "SSH host key",
        lambda i: i.write("/etc/ssh/ssh_host_ecdsa_key", private_key_pem(), mode=0o600),
        {"secrets_no_ssh_keys", "secrets_no_private_keys"},
        "/etc/ssh/ssh_host_ecdsa_key",
    ),
    (
        "authorized_keys",
        lambda i: i.write("/root/.ssh/authorized_keys", "ssh-ed25519 AAAAC3Nza test\n", mode=0o600),
        {"secrets_no_ssh_keys"},
        "/root/.ssh/authorized_keys",
    ),
    (
        "docker auths",
        lambda i: i.write(
            "/root/.docker/config.json", json.dumps({"auths": {"r.invalid": {"auth": "dTpw"}}})
        ),
        {"secrets_no_credential_files"},
        "/root/.docker/config.json",
    ),
    (
        ".netrc",
        lambda i: i.write("/home/nonroot/.netrc", "machine x login u password p\n", uid=65532, gid=65532),
        {"secrets_no_credential_files"},
        ".netrc",
    ),
    (
        "history",
        lambda i: i.write("/root/.bash_history", "export TOKEN=x\n"),
        {"secrets_no_shell_histories"},
        ".bash_history",
    ),
    (
        "corrupt CA bundle",
        lambda i: i.write(
            "/etc/ssl/certs/ca-certificates.crt",
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        ),
        {"crypto_ca_bundle"},
        "does not parse",
    ),
    (
        "no CA bundle",
        lambda i: i.remove("/etc/ssl/certs/ca-certificates.crt"),
        {"crypto_ca_bundle"},
        "ca-certificates.crt",
    ),
    (
        # SSL_CERT_FILE is set, but a container started without the image's
        # environment has OpenSSL look in OPENSSLDIR only, and find nothing there.
        "OpenSSL finds no CA without SSL_CERT_FILE",
        lambda i: i.remove("/usr/lib/ssl/cert.pem"),
        {"crypto_ca_bundle"},
        "no /usr/lib/ssl/cert.pem and no subject-hash certificates in /usr/lib/ssl/certs",
    ),
    (
        "libcrypto built with another OPENSSLDIR",
        lambda i: i.write("/usr/lib/libcrypto.so.3", b'\x7fELF\0OPENSSLDIR: "/opt/ssl"\0', mode=0o755),
        {"crypto_ca_bundle"},
        "OPENSSLDIR /opt/ssl",
    ),
    (
        "OpenSSL default CA file corrupt",
        lambda i: (
            i.remove("/usr/lib/ssl/cert.pem"),
            i.write(
                "/usr/lib/ssl/cert.pem", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
            ),
        ),
        {"crypto_ca_bundle"},
        "/usr/lib/ssl/cert.pem does not parse",
    ),
    (
        "FIPS claimed, not configured",
        lambda i: i.image_config["Labels"].update({"dev.bastion.fips": "true"}),
        {"crypto_fips_provider"},
        "fips.so",
    ),
]


@pytest.mark.parametrize(("plant", "expected", "evidence"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_planted_problem_fails_exactly_its_rules(
    tmp_path: Path, plant: Plant, expected: set[str], evidence: str
) -> None:
    image = clean_image(tmp_path)
    plant(image)
    failed = _failed(_run(image))
    assert set(failed) == expected, failed
    for name in expected:
        assert any(evidence in line for line in failed[name]), (name, failed[name])


def test_every_rule_has_a_planted_case() -> None:
    covered = set().union(*(c[2] for c in CASES))
    assert covered == {n for n in RULES if not n.startswith("host_")}


def test_secret_values_never_reach_the_evidence(tmp_path: Path) -> None:
    image = clean_image(tmp_path)
    _env(image, "DB_PASSWORD=hunter2-very-secret", "GITHUB_TOKEN=ghp_" + "a1B2" * 9)
    (result,) = [r for r in _run(image).results if r.rule.name == "image_env_no_secrets"]
    assert result.result is Result.FAIL
    text = " ".join([result.message, *result.evidence])
    assert "GITHUB_TOKEN" in text and "DB_PASSWORD" in text
    assert "hunter2" not in text and "a1B2" not in text


def test_benign_environment_is_not_a_secret(tmp_path: Path) -> None:
    image = clean_image(tmp_path)
    _env(image, "TOKENIZERS_PARALLELISM=false", "POSTGRES_PASSWORD_FILE=/run/secrets/db", "LANG=C.UTF-8")
    assert _failed(_run(image)) == {}


def test_dangling_shell_link_is_not_a_shell(tmp_path: Path) -> None:
    image = clean_image(tmp_path)
    image.symlink("/usr/bin/sh", "dash")  # dash itself is absent
    assert _failed(_run(image)) == {}
    image.write("/usr/bin/dash", b"\x7fELF dash", mode=0o755)
    failed = _failed(_run(image))
    assert set(failed) == {"packages_no_shells"}
    assert {"/usr/bin/dash", "/usr/bin/sh"} <= set(failed["packages_no_shells"])


def test_a_signed_apt_source_passes(tmp_path: Path) -> None:
    image = clean_image(tmp_path)
    image.write(
        "/etc/apt/sources.list.d/debian.list", "deb [signed-by=/k.gpg] http://repo.invalid/ stable main\n"
    )
    (result,) = [r for r in _run(image).results if r.rule.name == "packages_signed_sources"]
    assert result.result is Result.PASS


def test_fips_claim_with_configured_provider_passes(tmp_path: Path) -> None:
    image = clean_image(tmp_path)
    image.image_config["Labels"]["dev.bastion.fips"] = "true"
    image.write("/usr/lib/x86_64-linux-gnu/ossl-modules/fips.so", b"\x7fELF fips")
    image.write(
        "/etc/ssl/openssl.cnf",
        "openssl_conf = openssl_init\n.include /etc/ssl/fipsmodule.cnf\n[openssl_init]\n"
        "providers = provider_sect\nalg_section = algorithm_sect\n[provider_sect]\nfips = fips_sect\n"
        "[algorithm_sect]\ndefault_properties = fips=yes\n",
    )
    image.write("/etc/ssl/fipsmodule.cnf", "[fips_sect]\nactivate = 1\nmodule-mac = 00:11\n")
    (result,) = [r for r in _run(image).results if r.rule.name == "crypto_fips_provider"]
    assert result.result is Result.PASS, result.evidence


def test_openssl_finds_hashed_certificates_in_its_ca_directory(tmp_path: Path) -> None:
    image = clean_image(tmp_path)
    image.remove("/usr/lib/ssl/cert.pem")
    image.symlink("/usr/lib/ssl/certs", "/etc/ssl/certs")
    image.symlink("/etc/ssl/certs/0123abcd.0", "ca-certificates.crt")
    (result,) = [r for r in _run(image).results if r.rule.name == "crypto_ca_bundle"]
    assert result.result is Result.PASS, result.evidence
    assert "1 in /usr/lib/ssl/certs" in result.message


def test_openssldir_is_read_from_the_image_libcrypto(tmp_path: Path) -> None:
    image = clean_image(tmp_path)
    image.write("/usr/lib/libcrypto.so.3", b'\x7fELF\0OPENSSLDIR: "/opt/ssl"\0', mode=0o755)
    image.symlink("/opt/ssl/cert.pem", "/etc/ssl/certs/ca-certificates.crt")
    (result,) = [r for r in _run(image).results if r.rule.name == "crypto_ca_bundle"]
    assert result.result is Result.PASS, result.evidence
    assert "/opt/ssl/cert.pem" in result.message


def test_no_tls_library_makes_the_ca_rule_not_applicable(tmp_path: Path) -> None:
    image = clean_image(tmp_path)
    image.remove("/usr/lib/libssl.so.3")
    image.remove("/etc/ssl/certs/ca-certificates.crt")
    (result,) = [r for r in _run(image).results if r.rule.name == "crypto_ca_bundle"]
    assert result.result is Result.NOTAPPLICABLE


def test_host_rules_are_not_applicable_with_a_reason(tmp_path: Path) -> None:
    results = [r for r in _run(clean_image(tmp_path)).results if r.rule.area.value == "host"]
    assert len(results) == 6
    for r in results:
        assert r.result is Result.NOTAPPLICABLE
        assert len(r.message) > 40 and r.rule.cci


def test_a_check_that_cannot_read_reports_error_and_the_rest_still_run(tmp_path: Path) -> None:
    image = clean_image(tmp_path)
    image.mkdir("/srv/fake")  # on disk a directory; the "layer" below says it is a file
    image.set("/srv/fake", kind=FileKind.FILE, size=500, mode=0o644)
    result = _run(image)
    by_name = {r.rule.name: r for r in result.results}
    assert by_name["secrets_no_private_keys"].result is Result.ERROR
    assert "IsADirectoryError" in by_name["secrets_no_private_keys"].message
    assert by_name["image_user_nonroot"].result is Result.PASS
    assert result.failed == (by_name["secrets_no_private_keys"],)


def test_strict_profile_applies_runtime_rules_to_every_variant(tmp_path: Path) -> None:
    image = clean_image(tmp_path)
    image.image_config["Labels"]["dev.bastion.variant"] = "dev"
    image.write("/var/lib/dpkg/status", "Package: bash\n")
    image.write("/usr/bin/bash", b"\x7fELF bash", mode=0o755)
    assert _failed(_run(image)) == {}  # a dev image may have a shell
    strict = tmp_path / "strict.yaml"
    strict.write_text(
        "name: strict\nversion: '1'\nextends: default\nrules:\n"
        "  - {id: packages_no_shells, params: {runtime_only: false}}\n"
    )
    with image.target() as target:
        failed = _failed(compliance(target, load_profile(strict)))
    assert set(failed) == {"packages_no_shells"}
