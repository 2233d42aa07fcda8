"""Hostile or broken input to `bastion review diff`: one clear line and exit 2 (or a note), never a
crash, and nothing from the reviewed repository or tarball ever runs."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

from tests.conftest import run_cli
from tests.review.cases import _git, cases, materialise, tarball_of


def _tar(path: Path, members: list[tarfile.TarInfo], data: bytes = b"x") -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for info in members:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return path


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size = kind, link, 1 if kind == tarfile.REGTYPE else 0
    return info


def _good(tmp: Path) -> Path:
    src = tmp / "src"
    (src / "src").mkdir(parents=True)
    (src / "src" / "main.c").write_text("int main(void) { return 0; }\n")
    return tarball_of(src, tmp / "good.tar.gz", "good-1.0")


def _refused(tmp: Path, *args: str) -> str:
    result = run_cli("review", "diff", *args, home=tmp / "home")
    assert result.code == 2, (result.code, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert result.stdout == ""
    return lines[0]


def test_tarballs_that_escape_or_carry_devices_are_refused(tmp_path: Path) -> None:
    good = _good(tmp_path)
    bad = {
        "traversal": [_member("pkg-1.0/../../etc/passwd")],
        "absolute": [_member("/etc/passwd")],
        "device": [_member("pkg-1.0/dev/sda", tarfile.BLKTYPE)],
        "fifo": [_member("pkg-1.0/fifo", tarfile.FIFOTYPE)],
        "link-out": [_member("pkg-1.0/evil", tarfile.SYMTYPE, "../../../etc/shadow")],
        "link-absolute": [_member("pkg-1.0/evil", tarfile.SYMTYPE, "/etc/shadow")],
    }
    for name, members in bad.items():
        path = _tar(tmp_path / f"{name}.tar.gz", members)
        line = _refused(tmp_path, str(good), str(path))
        assert f"{name}.tar.gz" in line, line
        assert any(word in line for word in ("escape", "outside", "device")), line


def test_unreadable_inputs_are_named(tmp_path: Path) -> None:
    good = _good(tmp_path)
    (tmp_path / "garbage.tar.gz").write_bytes(b"\x1f\x8b\x08 this is not gzip")
    assert "not a readable tar archive" in _refused(tmp_path, str(good), str(tmp_path / "garbage.tar.gz"))
    assert "no such tarball" in _refused(tmp_path, str(good), str(tmp_path / "missing.tar.gz"))
    assert "not a directory" in _refused(tmp_path, "v1", "v2", "--repo", str(tmp_path / "nowhere"))
    (tmp_path / "plain").mkdir()
    assert "a git repository" in _refused(tmp_path, "v1", "v2", "--repo", str(tmp_path / "plain"))


def test_refs_that_do_not_exist_or_look_like_options_are_refused(tmp_path: Path) -> None:
    case = next(c for c in cases() if c.name == "c-error-refactor")
    repo = materialise(case, tmp_path)[3]
    assert "ref 'v9'" in _refused(tmp_path, "v1", "v9", "--repo", repo)
    assert "not a usable ref" in _refused(tmp_path, "--repo", repo, "--", "v1", "--output=/tmp/x")
    assert "ref 'HEAD:AUTHORS'" in _refused(tmp_path, "v1", "HEAD:AUTHORS", "--repo", repo)


def test_nothing_configured_in_the_repository_runs(tmp_path: Path) -> None:
    """fsmonitor (a command git runs), hooks and a clean/smudge filter are all set in the reviewed
    repository's own config; the review runs none of them."""
    case = next(c for c in cases() if c.name == "c-error-refactor")
    repo = Path(materialise(case, tmp_path)[3])
    witness = tmp_path / "ran"
    script = repo / ".git" / "payload.sh"
    script.write_text(f"#!/bin/sh\ntouch {witness}\ncat\n")
    script.chmod(0o755)
    for hook in ("post-checkout", "pre-commit", "post-index-change", "reference-transaction"):
        (repo / ".git" / "hooks" / hook).write_text(f"#!/bin/sh\ntouch {witness}\n")
        (repo / ".git" / "hooks" / hook).chmod(0o755)
    _git(repo, "config", "core.fsmonitor", str(script))
    _git(repo, "config", "filter.evil.smudge", str(script))
    _git(repo, "config", "filter.evil.textconv", str(script))
    _git(repo, "config", "diff.external", str(script))
    (repo / ".gitattributes").write_text("* filter=evil diff=evil\n")
    result = run_cli("review", "diff", "v1", "v2", "--repo", str(repo), home=tmp_path / "home")
    assert result.code == 0, result.stderr
    assert not witness.exists()


def test_files_that_do_not_parse_and_binary_files_get_a_note(tmp_path: Path) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    for side in (old, new):
        (side / "src").mkdir(parents=True)
        (side / "src" / "ok.py").write_text("def f():\n    return 1\n")
    (new / "src" / "broken.c").write_text("int f( { if (err == 0) return err; \n")
    (new / "src" / "broken.py").write_text("}}} def (((: [[[\n")
    body = "".join(f"int g{i}(int x)\n{{\n    return x + {i};\n}}\n" for i in range(20))
    (new / "src" / "partial.c").write_text(body + "FOO_MACRO(int, bar) {{{ ;\n")
    (new / "docs").mkdir()
    (new / "docs" / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    a = tarball_of(old, tmp_path / "a.tar.gz", "p-1")
    b = tarball_of(new, tmp_path / "b.tar.gz", "p-2")
    result = run_cli("review", "diff", str(a), str(b), "--format", "json", home=tmp_path / "home")
    assert result.code in (0, 1), result.stderr
    doc = json.loads(result.stdout)
    assert "src/broken.c: does not parse as c; analysed as text" in doc["notes"]
    assert "src/broken.py: does not parse as python; analysed as text" in doc["notes"]
    assert "src/partial.c: parts do not parse as c (macros?); the rest analysed" in doc["notes"]
    assert any(n.startswith("docs/logo.png: binary file") for n in doc["notes"])
    assert [f["rule"] for f in doc["findings"]] == ["BI005"]
    assert "does not parse as c" in result.stderr


def test_member_count_and_size_are_bounded(tmp_path: Path) -> None:
    good = _good(tmp_path)
    big = tmp_path / "big.tar.gz"
    with tarfile.open(big, "w:gz") as tar:
        info = tarfile.TarInfo("p/zeros")
        info.size = 2 * 1024 * 1024
        tar.addfile(info, io.BytesIO(bytes(info.size)))
    result = run_cli("review", "diff", str(good), str(big), home=tmp_path / "home",
                     env={"BASTION_MAX_REVIEW_SIZE": "1M"})  # fmt: skip
    assert result.code == 2 and "big.tar.gz: members hold more than 1048576 bytes" in result.stderr


def test_a_very_long_file_is_compared_by_counting_its_lines(tmp_path: Path) -> None:
    """configure scripts run to tens of thousands of lines; past 20,000 the added lines are counted, not
    aligned, and what they add is still found."""
    old, new = tmp_path / "old", tmp_path / "new"
    body = "".join(f'echo "checking feature {i}"\n' for i in range(25_000))
    for side in (old, new):
        side.mkdir()
    (old / "configure").write_text("#!/bin/sh\n" + body)
    (new / "configure").write_text("#!/bin/sh\n" + body + 'eval "$(echo ZWNobyBoaQ== | base64 -d)"\n')
    a = tarball_of(old, tmp_path / "a.tar.gz", "p-1")
    b = tarball_of(new, tmp_path / "b.tar.gz", "p-2")
    result = run_cli("review", "diff", str(a), str(b), "--format", "json", home=tmp_path / "home")
    doc = json.loads(result.stdout)
    assert result.code == 1 and doc["verdict"] == "block"
    assert [(f["rule"], f["line"]) for f in doc["findings"]] == [("BI002", 25_002)]
