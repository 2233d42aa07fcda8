"""The guardrail's evaluation set (tests/data/guardrail/): each case holds the files of an old and a new
version of a small upstream-like project and a ``case.json`` (the expected verdict, the rule family the
planted problem belongs to, how the versions are delivered). :func:`materialise` turns a case into what
`bastion review diff` takes — a git repository with tags v1 and v2, two release tarballs, or a tag and
the tarball released from it — so only sources are committed. Used by tests/review/test_evaluation.py and
benchmarks/guardrail.py."""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

CASES = Path(__file__).resolve().parent.parent / "data" / "guardrail"
MAINTAINER = "Alice Maintainer <alice@example.org>"


@dataclass(frozen=True)
class Case:
    name: str
    expect: str
    family: str
    planted: bool
    mode: str
    author: str | None
    about: str
    root: Path
    also: tuple[str, ...] = ()
    """Other families the planted change also belongs to (a problem can be two things at once)."""


def cases() -> list[Case]:
    found = []
    for meta in sorted(CASES.glob("*/case.json")):
        doc = json.loads(meta.read_text(encoding="utf-8"))
        found.append(Case(meta.parent.name, doc["expect"], doc["family"], doc["planted"], doc["mode"],
                          doc.get("author"), doc.get("about", ""), meta.parent, tuple(doc.get("also", ()))))  # fmt: skip
    return found


def _git(repo: Path, *args: str, author: str = MAINTAINER, when: str = "2024-01-01T00:00:00Z") -> None:
    name, _, email = author.partition(" <")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(repo), "GIT_CONFIG_NOSYSTEM": "1",
           "GIT_AUTHOR_NAME": name, "GIT_AUTHOR_EMAIL": email.rstrip(">"), "GIT_AUTHOR_DATE": when,
           "GIT_COMMITTER_NAME": name, "GIT_COMMITTER_EMAIL": email.rstrip(">"), "GIT_COMMITTER_DATE": when}  # fmt: skip
    subprocess.run(["git", "-C", str(repo), *args], check=True, env=env, capture_output=True)


def _copy(src: Path, dst: Path) -> None:
    for path in sorted(src.rglob("*")):
        if path.is_file():
            target = dst / path.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
            target.chmod(0o755 if path.suffix == ".sh" else 0o644)


def tarball_of(src: Path, out: Path, top: str) -> Path:
    """A release tarball of ``src`` under ``top/``, as `make dist` lays it out (gzip, sorted, fixed times)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for path in sorted(src.rglob("*")):
            if path.is_file():
                data = path.read_bytes()
                info = tarfile.TarInfo(f"{top}/{path.relative_to(src).as_posix()}")
                info.size, info.mtime, info.mode = len(data), 1704067200, 0o644
                tar.addfile(info, io.BytesIO(data))
    out.write_bytes(buf.getvalue())
    return out


def git_repo(case: Case, work: Path) -> Path:
    repo = work / f"{case.name}.git-work"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    # Some history by the maintainer, so that "first-time author" means something.
    (repo / "AUTHORS").write_text("Alice Maintainer\n")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "start", when="2023-01-01T00:00:00Z")
    _copy(case.root / "old", repo)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "release 1.0")
    _git(repo, "tag", "v1")
    if case.mode == "git":
        for path in (case.root / "old").rglob("*"):
            if path.is_file():
                (repo / path.relative_to(case.root / "old")).unlink()
        _copy(case.root / "new", repo)
        _git(repo, "add", "-A")
        _git(
            repo,
            "commit",
            "-q",
            "-m",
            "release 1.1",
            author=case.author or MAINTAINER,
            when="2024-02-01T00:00:00Z",
        )
        _git(repo, "tag", "v2")
    return repo


def materialise(case: Case, work: Path) -> list[str]:
    """The arguments of `bastion review diff` for ``case``, its inputs made under ``work``."""
    if case.mode == "tarball":
        old = tarball_of(case.root / "old", work / f"{case.name}-1.0.tar.gz", "project-1.0")
        new = tarball_of(case.root / "new", work / f"{case.name}-1.1.tar.gz", "project-1.1")
        return [str(old), str(new)]
    repo = git_repo(case, work)
    if case.mode == "release":
        tarball = tarball_of(case.root / "new", work / f"{case.name}-1.0.tar.gz", "project-1.0")
        # The tarball is made from the tag's tree plus what the release process added.
        return ["v1", str(tarball), "--repo", str(repo)]
    return ["v1", "v2", "--repo", str(repo)]
