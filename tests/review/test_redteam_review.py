"""Red-team regressions for `bastion review diff`: each input here once ran code from the reviewed
repository, or cost unbounded memory or time, or ended in an internal error (exit 3)."""

from __future__ import annotations

import gzip
import io
import subprocess
import tarfile
from pathlib import Path

from tests.conftest import run_cli
from tests.review.cases import _git


def _refused(tmp: Path, *args: str, env: dict[str, str] | None = None) -> str:
    result = run_cli("review", "diff", *args, home=tmp / "home", env=env)
    assert result.code == 2, (result.code, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def _good(tmp: Path) -> Path:
    path = tmp / "good.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo("pkg-1/a.c")
        data = b"int f(void) { return 0; }\n"
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return path


def _header(name: str, kind: bytes, size: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.type, info.size = kind, size
    return info.tobuf(format=tarfile.USTAR_FORMAT)


def test_a_partial_clone_cannot_make_git_fetch_through_an_ext_remote(tmp_path: Path) -> None:
    """A blobless clone whose promisor remote is `ext::<command>`, with `protocol.ext.allow=always` in its
    own config (which outranks `-c protocol.allow=never`): reading a missing blob made git run the
    command. GIT_ALLOW_PROTOCOL= allows no transport, whatever the repository says."""
    upstream = tmp_path / "upstream"
    upstream.mkdir()
    _git(upstream, "init", "-q")
    _git(upstream, "config", "uploadpack.allowfilter", "true")
    for tag, body in (("v1", "return 0;"), ("v2", "return 1;")):
        (upstream / "a.c").write_text(f"int f(void) {{ {body} }}\n")
        _git(upstream, "add", "a.c")
        _git(upstream, "commit", "-qm", tag)
        _git(upstream, "tag", tag)
    clone = tmp_path / "clone.git"
    subprocess.run(["git", "clone", "-q", "--bare", "--filter=blob:none", f"file://{upstream}", str(clone)],
                   check=True, capture_output=True)  # fmt: skip
    witness = tmp_path / "ran"
    _git(clone, "config", "protocol.ext.allow", "always")
    _git(clone, "config", "remote.origin.url", f"ext::sh -c touch% {witness}")
    line = _refused(tmp_path, "v1", "v2", "--repo", str(clone))
    assert str(clone) in line and "promisor" in line, line
    assert not witness.exists()


def test_an_extended_header_bomb_is_refused_before_it_is_read(tmp_path: Path) -> None:
    """A 600 KB gzip of one pax header declaring 600 MB: tarfile read it whole into memory (0.66 GB,
    47 s) and the review passed. A GNU long name the same way made a 600 MB file name."""
    good = _good(tmp_path)
    size = 600 * 1024 * 1024
    for kind in (tarfile.XHDTYPE, tarfile.GNUTYPE_LONGNAME):
        bomb = tmp_path / "bomb.tar.gz"
        with gzip.open(bomb, "wb") as out:
            out.write(_header("././@LongLink", kind, size))
            zeros = bytes(1 << 20)
            for _ in range(size >> 20):
                out.write(zeros)
        result = run_cli("review", "diff", str(good), str(bomb), home=tmp_path / "home")
        assert result.code == 2, result.stderr
        # Refused by the header-size check, so before the header's body is read. (No RSS bound here:
        # a child's ru_maxrss starts from the pytest process's own peak across fork and exec.)
        assert "bomb.tar.gz: an extended header of 629145600 bytes" in result.stderr


def test_a_chain_of_extended_headers_is_refused_not_a_crash(tmp_path: Path) -> None:
    """5,000 GNU long-name headers in a row: tarfile reads a chain by recursion (RecursionError, exit 3)."""
    good = _good(tmp_path)
    chain = tmp_path / "chain.tar.gz"
    with gzip.open(chain, "wb") as out:
        for _ in range(5000):
            out.write(
                _header("././@LongLink", tarfile.GNUTYPE_LONGNAME, 10) + b"pkg/aaaaa\0".ljust(512, b"\0")
            )
        out.write(_header("pkg/x", tarfile.REGTYPE, 0) + bytes(1024))
    assert "chain.tar.gz" in _refused(tmp_path, str(good), str(chain))


def test_what_a_tarball_decompresses_to_is_bounded(tmp_path: Path) -> None:
    """Long names just under the header bound, each on a directory: members hold nothing, yet the stream
    is read on; it stops a little past BASTION_MAX_REVIEW_SIZE plus tar's own bytes per member."""
    good = _good(tmp_path)
    stream = tmp_path / "stream.tar.gz"
    name = b"a" * (60 * 1024)
    with gzip.open(stream, "wb") as out:
        for i in range(2000):
            out.write(
                _header("././@LongLink", tarfile.GNUTYPE_LONGNAME, len(name)) + name + bytes(-len(name) % 512)
            )
            out.write(_header(f"pkg/d{i}", tarfile.DIRTYPE, 0))
        out.write(bytes(1024))
    line = _refused(tmp_path, str(good), str(stream), env={"BASTION_MAX_REVIEW_SIZE": "1M"})
    assert "stream.tar.gz: decompresses to more than" in line, line
