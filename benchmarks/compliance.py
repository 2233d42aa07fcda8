"""Compliance scan of the python runtime image against OpenSCAP on the same unpacked root filesystem.

Bastion: ``bastion compliance bastion/python:3.11 --format json`` (the default profile, 48 rules, from
the local store: the layers are unpacked by the command), and ``bastion compliance fs://ROOTFS`` on
the root filesystem OpenSCAP reads. OpenSCAP: ``oscap xccdf eval`` with ``OSCAP_PROBE_ROOT=ROOTFS``
(what ``oscap-chroot`` does) of an XCCDF 1.2 benchmark of 40 rules checked by OVAL 5.11 file and
textfilecontent54 tests, written here at run time into a temporary directory: the file, account,
package and secret checks of Bastion's profile that OVAL can express (the image-config and
host-level rules have no OVAL equivalent on a directory).

The image must be in the store of ``BASTION_HOME`` (it is built with ``--locked`` when it is not).
The root filesystem is ``bastion export ... oci-dir://`` unpacked with ``umoci unpack`` (as root,
keeping owners; ``--rootless`` otherwise). Usage: ``python3 benchmarks/compliance.py [--runs 5]``;
prints a Markdown table, then what each tool found.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from _measure import measure
from lxml import etree

ROOT = Path(__file__).resolve().parent.parent
DEFINITION = ROOT / "catalog" / "python" / "python.yaml"
IMAGE = "bastion/python:3.11"

OVAL = "http://oval.mitre.org/XMLSchema/oval-definitions-5"
OVAL_COMMON = "http://oval.mitre.org/XMLSchema/oval-common-5"
UNIX = f"{OVAL}#unix"
IND = f"{OVAL}#independent"
XCCDF = "http://checklists.nist.gov/xccdf/1.2"
PREFIX = "oval:dev.bastion.bench"

# unix:file_state children in schema order (OVAL 5.11 unix-definitions-schema.xsd).
_STATE_ORDER = ("type", "group_id", "user_id", "suid", "sgid", "sticky", "gread", "gwrite", "gexec",
                "oread", "owrite", "oexec")  # fmt: skip


@dataclass
class Files:
    """A unix:file_test: the files ``where`` names (a path, or a directory with a filename pattern,
    optionally searched recursively), filtered to ``bad`` properties, must not exist; or, with
    ``state``, must exist and all have the state."""

    where: str
    pattern: str | None = None
    recurse: bool = False
    bad: dict[str, str] = field(default_factory=dict)
    state: dict[str, str] | None = None
    path_pattern: bool = False  # ``where`` is a regular expression over directories
    directory: bool = False  # ``where`` is a directory, checked itself (OVAL: path with a nil filename)


@dataclass
class Text:
    """A ind:textfilecontent54_test: no line of the files matches ``regex`` (or, with ``present``,
    some line does)."""

    where: str
    regex: str
    pattern: str | None = None
    recurse: bool = False
    present: bool = False


@dataclass
class Check:
    name: str
    title: str
    tests: list[Files | Text]


def _absent(*paths: str) -> list[Files | Text]:
    return [Files(p) for p in paths]


_NOT_WRITABLE = {"gwrite": "false", "owrite": "false"}
_ROOT_OWNED = {"user_id": "0", **_NOT_WRITABLE}
_PRIVATE = {"gread": "false", "gwrite": "false", "gexec": "false", "oread": "false", "owrite": "false",
            "oexec": "false"}  # fmt: skip

CHECKS = [
    Check("passwd_owner", "/etc/passwd is root's and not writable by others",
          [Files("/etc/passwd", state={"group_id": "0", **_ROOT_OWNED})]),
    Check("group_owner", "/etc/group is root's and not writable by others",
          [Files("/etc/group", state={"group_id": "0", **_ROOT_OWNED})]),
    Check("shadow_mode", "/etc/shadow is root's and not readable by others",
          [Files("/etc/shadow", state={"user_id": "0", "oread": "false", "owrite": "false"})]),
    Check("gshadow_mode", "/etc/gshadow is not readable by others",
          [Files("/etc/gshadow", bad={"oread": "true"})]),
    Check("only_root_uid0", "Only root has uid 0", [Text("/etc/passwd", r"^(?!root:)[^:]*:[^:]*:0:")]),
    Check("no_empty_passwords", "No empty password", [Text("/etc/shadow", r"^[^:]+::")]),
    Check("passwords_locked", "Every password is locked", [Text("/etc/shadow", r"^[^:]+:[^!*:][^:]*:")]),
    Check("nologin_shells", "No account has a login shell",
          [Text("/etc/passwd", r":/(usr/)?bin/(ba|da|z|k|c|tc)?sh$")]),
    Check("no_suid", "No setuid file", [Files("/", ".*", recurse=True, bad={"suid": "true"})]),
    Check("no_sgid", "No setgid file", [Files("/", ".*", recurse=True, bad={"sgid": "true"})]),
    Check("no_world_writable", "No world-writable file",
          [Files("/", ".*", recurse=True, bad={"type": "regular", "owrite": "true"})]),
    Check("sticky_world_writable_dirs", "World-writable directories are sticky",
          [Files("/", None, recurse=True, bad={"type": "directory", "owrite": "true", "sticky": "false"})]),
    Check("no_char_devices", "No character device outside /dev",
          [Files(r"^/(?!dev(/|$)).*", ".*", path_pattern=True, bad={"type": "character special"})]),
    Check("no_block_devices", "No block device outside /dev",
          [Files(r"^/(?!dev(/|$)).*", ".*", path_pattern=True, bad={"type": "block special"})]),
    Check("nonroot_home_private", "/home/nonroot is private to its owner",
          [Files("/home/nonroot", directory=True, state={"user_id": "65532", **_PRIVATE})]),
    Check("root_home_private", "/root is private to root", [Files("/root", directory=True, state={"user_id": "0", **_PRIVATE})]),
    Check("tmp_sticky", "/tmp has the sticky bit", [Files("/tmp", directory=True, state={"sticky": "true"})]),
    Check("usr_bin_owner", "/usr/bin is root's", [Files("/usr/bin", directory=True, state=_ROOT_OWNED)]),
    Check("usr_sbin_owner", "/usr/sbin is root's", [Files("/usr/sbin", directory=True, state=_ROOT_OWNED)]),
    Check("usr_lib_owner", "/usr/lib is root's", [Files("/usr/lib", directory=True, state=_ROOT_OWNED)]),
    Check("etc_owner", "/etc is root's", [Files("/etc", directory=True, state=_ROOT_OWNED)]),
    Check("system_binaries_not_writable", "Nothing in /usr/bin is writable by others",
          [Files("/usr/bin", ".*", bad={"type": "regular", "owrite": "true"})]),
    Check("system_libraries_not_writable", "Nothing under /usr/lib is writable by others",
          [Files("/usr/lib", ".*", recurse=True, bad={"type": "regular", "owrite": "true"})]),
    Check("no_shells", "No shell",
          _absent("/bin/sh", "/bin/bash", "/bin/dash", "/usr/bin/sh", "/usr/bin/bash", "/usr/bin/dash",
                  "/usr/bin/zsh", "/bin/busybox")),
    Check("no_package_managers", "No package manager",
          _absent("/usr/bin/apt", "/usr/bin/apt-get", "/usr/bin/dpkg", "/usr/bin/pip", "/usr/bin/pip3",
                  "/usr/bin/rpm", "/sbin/apk")),
    Check("no_remote_access_daemons", "No remote-access daemon",
          _absent("/usr/sbin/sshd", "/usr/sbin/telnetd", "/usr/sbin/in.telnetd", "/usr/sbin/xrdp",
                  "/usr/bin/x11vnc")),
    Check("no_compilers_debuggers", "No compiler or debugger",
          _absent("/usr/bin/gcc", "/usr/bin/cc", "/usr/bin/g++", "/usr/bin/clang", "/usr/bin/gdb",
                  "/usr/bin/strace")),
    Check("no_privilege_escalation", "No sudo, doas or pkexec",
          _absent("/usr/bin/sudo", "/usr/bin/doas", "/usr/bin/pkexec", "/etc/sudoers")),
    Check("no_apt_lists", "No package lists", [Files("/var/lib/apt/lists", r".*_Packages.*")]),
    Check("no_deb_cache", "No downloaded packages", [Files("/var/cache/apt/archives", r".*\.deb$")]),
    Check("no_pip_cache", "No pip cache", _absent("/root/.cache/pip", "/home/nonroot/.cache/pip")),
    Check("no_private_keys", "No private key in /etc, /root or /home",
          [Text(d, r"-----BEGIN [A-Z ]*PRIVATE KEY-----", ".*", recurse=True) for d in ("/etc", "/root", "/home")]),
    Check("no_ssh_host_keys", "No SSH host key", [Files("/etc/ssh", r"ssh_host_.*_key$")]),
    Check("no_authorized_keys", "No authorized_keys file",
          [Files(d, r"authorized_keys2?$", recurse=True) for d in ("/root", "/home")]),
    Check("no_shell_histories", "No shell history",
          [Files("/", r"^\..*_history$", recurse=True)]),
    Check("no_credential_files", "No credential file",
          [Files("/", r"^\.(netrc|pgpass|git-credentials)$", recurse=True),
           *_absent("/root/.docker/config.json", "/root/.aws/credentials")]),
    Check("ca_bundle", "The CA bundle holds certificates",
          [Text("/etc/ssl/certs/ca-certificates.crt", "-----BEGIN CERTIFICATE-----", present=True)]),
    Check("ca_bundle_owner", "The CA bundle is root's", [Files("/etc/ssl/certs/ca-certificates.crt", state=_ROOT_OWNED)]),
    Check("apt_sources_signed", "No APT source is trusted without a signature",
          [Text("/etc/apt", r"trusted=yes", ".*", recurse=True)]),
    Check("os_release", "The image says what it is", [Text("/etc/os-release", r"^ID=", present=True)]),
]  # fmt: skip


class _Writer:
    """The OVAL definitions document and the XCCDF benchmark for :data:`CHECKS`."""

    def __init__(self) -> None:
        self.next_id = 0
        self.oval = etree.Element(f"{{{OVAL}}}oval_definitions", nsmap={None: OVAL, "oval": OVAL_COMMON,
                                  "unix": UNIX, "ind": IND})  # fmt: skip
        generator = etree.SubElement(self.oval, f"{{{OVAL}}}generator")
        etree.SubElement(generator, f"{{{OVAL_COMMON}}}schema_version").text = "5.11.1"
        etree.SubElement(generator, f"{{{OVAL_COMMON}}}timestamp").text = "2025-01-01T00:00:00"
        self.sections = {
            name: etree.SubElement(self.oval, f"{{{OVAL}}}{name}")
            for name in ("definitions", "tests", "objects", "states")
        }

    def _id(self, kind: str) -> str:
        self.next_id += 1
        return f"{PREFIX}:{kind}:{self.next_id}"

    def _state(self, tag: str, values: dict[str, str]) -> str:
        state_id = self._id("ste")
        state = etree.SubElement(self.sections["states"], tag, id=state_id, version="1")
        for key in _STATE_ORDER:
            if key in values:
                datatype = "int" if key.endswith("_id") else "boolean" if key != "type" else "string"
                attributes = {"datatype": datatype} if datatype != "string" else {}
                etree.SubElement(state, f"{{{UNIX}}}{key}", attributes).text = values[key]
        return state_id

    def _place(self, obj: etree._Element, ns: str, where: str, pattern: str | None, recurse: bool,
               path_pattern: bool = False, directory: bool = False) -> None:  # fmt: skip
        if recurse:
            etree.SubElement(obj, f"{{{ns}}}behaviors", recurse_direction="down", max_depth="-1",
                             recurse="directories")  # fmt: skip
        if pattern is None and not recurse and not path_pattern and not directory:
            etree.SubElement(obj, f"{{{ns}}}filepath").text = where
            return
        path = etree.SubElement(obj, f"{{{ns}}}path")
        path.text = where
        if path_pattern:
            path.set("operation", "pattern match")
        filename = etree.SubElement(obj, f"{{{ns}}}filename")
        if pattern is None:  # the directories themselves
            filename.set(f"{{{'http://www.w3.org/2001/XMLSchema-instance'}}}nil", "true")
        else:
            filename.set("operation", "pattern match")
            filename.text = pattern

    def _test(self, spec: Files | Text) -> str:
        object_id, test_id = self._id("obj"), self._id("tst")
        if isinstance(spec, Files):
            obj = etree.SubElement(
                self.sections["objects"], f"{{{UNIX}}}file_object", id=object_id, version="1"
            )
            self._place(obj, UNIX, spec.where, spec.pattern, spec.recurse, spec.path_pattern, spec.directory)
            if spec.bad:
                etree.SubElement(obj, f"{{{OVAL}}}filter", action="include").text = self._state(
                    f"{{{UNIX}}}file_state", spec.bad
                )
            existence = "none_exist" if spec.state is None else "at_least_one_exists"
            test = etree.SubElement(self.sections["tests"], f"{{{UNIX}}}file_test", id=test_id, version="1",
                                    check="all", check_existence=existence, comment=spec.where)  # fmt: skip
            etree.SubElement(test, f"{{{UNIX}}}object", object_ref=object_id)
            if spec.state is not None:
                state_id = self._state(f"{{{UNIX}}}file_state", spec.state)
                etree.SubElement(test, f"{{{UNIX}}}state", state_ref=state_id)
        else:
            obj = etree.SubElement(self.sections["objects"], f"{{{IND}}}textfilecontent54_object", id=object_id,
                                   version="1")  # fmt: skip
            self._place(obj, IND, spec.where, spec.pattern, spec.recurse)
            etree.SubElement(obj, f"{{{IND}}}pattern", operation="pattern match").text = spec.regex
            etree.SubElement(
                obj, f"{{{IND}}}instance", datatype="int", operation="greater than or equal"
            ).text = "1"
            existence = "at_least_one_exists" if spec.present else "none_exist"
            test = etree.SubElement(self.sections["tests"], f"{{{IND}}}textfilecontent54_test", id=test_id,
                                    version="1", check="all", check_existence=existence, comment=spec.where)  # fmt: skip
            etree.SubElement(test, f"{{{IND}}}object", object_ref=object_id)
        return test_id

    def definition(self, check: Check) -> str:
        definition_id = self._id("def")
        definition = etree.SubElement(self.sections["definitions"], f"{{{OVAL}}}definition", id=definition_id,
                                      version="1", **{"class": "compliance"})  # fmt: skip
        metadata = etree.SubElement(definition, f"{{{OVAL}}}metadata")
        etree.SubElement(metadata, f"{{{OVAL}}}title").text = check.title
        etree.SubElement(metadata, f"{{{OVAL}}}description").text = check.title
        criteria = etree.SubElement(definition, f"{{{OVAL}}}criteria", operator="AND")
        for spec in check.tests:
            etree.SubElement(criteria, f"{{{OVAL}}}criterion", test_ref=self._test(spec))
        return definition_id


def write_content(directory: Path) -> Path:
    """The OVAL definitions (``oval.xml``) and the XCCDF benchmark that references them; returns the
    benchmark's path."""
    writer = _Writer()
    benchmark = etree.Element(f"{{{XCCDF}}}Benchmark", nsmap={None: XCCDF}, id="xccdf_dev.bastion.bench_benchmark_oval",
                              resolved="true")  # fmt: skip
    etree.SubElement(benchmark, f"{{{XCCDF}}}status").text = "draft"
    etree.SubElement(benchmark, f"{{{XCCDF}}}title").text = "Bastion's file checks as OVAL"
    etree.SubElement(benchmark, f"{{{XCCDF}}}version").text = "1"
    for check in CHECKS:
        definition_id = writer.definition(check)
        rule = etree.SubElement(benchmark, f"{{{XCCDF}}}Rule", id=f"xccdf_dev.bastion.bench_rule_{check.name}",
                                selected="true", severity="medium")  # fmt: skip
        etree.SubElement(rule, f"{{{XCCDF}}}title").text = check.title
        check_element = etree.SubElement(rule, f"{{{XCCDF}}}check", system=OVAL)
        etree.SubElement(check_element, f"{{{XCCDF}}}check-content-ref", href="oval.xml", name=definition_id)
    (directory / "oval.xml").write_bytes(etree.tostring(writer.oval, xml_declaration=True, encoding="UTF-8"))
    path = directory / "benchmark.xml"
    path.write_bytes(etree.tostring(benchmark, xml_declaration=True, encoding="UTF-8", pretty_print=True))
    return path


def _run(cmd: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    env = dict(os.environ)
    bastion = [sys.executable, "-m", "bastion"]
    if subprocess.run([*bastion, "inspect", IMAGE], env=env, capture_output=True, check=False).returncode:
        _run([*bastion, "build", str(DEFINITION), "--locked", "--variant", "runtime", "--platform",
              "linux/amd64", "--skip-tests"], env)  # fmt: skip
    results: dict[str, list[tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        _run([*bastion, "export", IMAGE, f"oci-dir://{work / 'oci'}:bench", "--platform", "linux/amd64"], env)
        rootless = [] if os.geteuid() == 0 else ["--rootless"]
        _run(["umoci", "unpack", *rootless, "--image", f"{work / 'oci'}:bench", str(work / "bundle")], env)
        rootfs = work / "bundle" / "rootfs"
        content = write_content(work)
        _run(["oscap", "xccdf", "validate", "--skip-schematron", str(content)], env)
        _run(["oscap", "oval", "validate", str(work / "oval.xml")], env)
        oscap_env = {**env, "OSCAP_PROBE_ROOT": str(rootfs)}
        # oscap exits 2 when a rule fails: a finding, not a failed run.
        oscap = ["sh", "-c", 'oscap xccdf eval --results "$1" "$2" >/dev/null; test $? -le 2', "oscap",
                 str(work / "results.xml"), str(content)]  # fmt: skip
        commands = {
            f"bastion compliance {IMAGE} --format json (48 rules; unpacks the layers)": (
                [*bastion, "compliance", IMAGE, "--format", "json", "-o", str(work / "store.json")], env),
            "bastion compliance fs://ROOTFS --format json (48 rules; the unpacked rootfs)": (
                [*bastion, "compliance", f"fs://{rootfs}", "--format", "json", "-o", str(work / "fs.json")], env),
            f"OSCAP_PROBE_ROOT=ROOTFS oscap xccdf eval ({len(CHECKS)} OVAL rules)": (oscap, oscap_env),
        }  # fmt: skip
        for _ in range(args.runs):
            for what, (cmd, cmd_env) in commands.items():
                results.setdefault(what, []).append(measure(cmd, cmd_env))
        found = {
            "bastion (store)": Counter(r["result"] for r in json.loads((work / "store.json").read_text())["rules"]),
            "bastion (fs://)": Counter(r["result"] for r in json.loads((work / "fs.json").read_text())["rules"]),
            "oscap": Counter(
                etree.parse(str(work / "results.xml")).xpath("//x:rule-result/x:result/text()", namespaces={"x": XCCDF})
            ),
        }  # fmt: skip
        failed = etree.parse(str(work / "results.xml")).xpath(
            "//x:rule-result[x:result!='pass']/@idref", namespaces={"x": XCCDF}
        )
    print(f"| what (python runtime, amd64) | wall s (median of {args.runs}) | peak RSS MiB |")
    print("|---|---:|---:|")
    for what, runs in results.items():
        wall = statistics.median(w for w, _ in runs)
        rss = statistics.median(r for _, r in runs)
        print(f"| `{what}` | {wall:.2f} | {rss:.0f} |")
    print()
    for tool, counts in found.items():
        print(f"- {tool}: " + ", ".join(f"{n} {word}" for word, n in sorted(counts.items())))
    if failed:
        print(f"- oscap rules not passing: {', '.join(str(f) for f in failed)}")


if __name__ == "__main__":
    main()
