"""The two versions a command names: refs of ``--repo``, or release tarball paths, or a tag and the
tarball released from it."""

from __future__ import annotations

from pathlib import Path

from bastion.config import DEFAULT_MAX_REVIEW_SIZE
from bastion.errors import InputError
from bastion.review._engine import review_diff
from bastion.review._model import Review
from bastion.review._snapshot import Git, Snapshot, tarball


def review_versions(
    old: str, new: str, repo: Path | None = None, *, max_bytes: int = DEFAULT_MAX_REVIEW_SIZE
) -> Review:
    """Review ``old`` → ``new``: with ``repo``, each is a ref of it unless it names an existing file (then
    a release tarball: ``review_versions("v1.2", "pkg-1.2.tar.gz", repo)`` checks a release against its tag);
    without, both are tarballs. ``max_bytes`` bounds what each side may hold in memory."""
    git = Git(repo, max_bytes=max_bytes) if repo is not None else None
    return review_diff(_side(old, git, max_bytes), _side(new, git, max_bytes), git=git)


def _side(arg: str, git: Git | None, max_bytes: int) -> Snapshot:
    path = Path(arg)
    if git is None or path.is_file():
        if not path.exists():
            raise InputError("no such tarball (pass --repo PATH to compare git refs)", where=arg)
        return tarball(path, max_bytes=max_bytes)
    return git.snapshot(arg)
