"""apt sources: deb822 and one-line formats, and clear errors for malformed files (offline)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bastion.debian import host_sources
from bastion.errors import InputError


def test_reads_deb822_and_one_line_files_like_apt(tmp_path: Path) -> None:
    parts = tmp_path / "sources.list.d"
    parts.mkdir()
    (parts / "debian.sources").write_text(
        "# comment\nTypes: deb deb-src\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\n"
        "Components: main contrib\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n"
        "Types: deb\nURIs: http://mirror.example/off\nSuites: x\nComponents: main\nEnabled: no\n"
    )
    (parts / "extra.list").write_text(
        "deb-src http://mirror.example/src bookworm main\n"
        "deb [arch=arm64 signed-by=/etc/keys/x.gpg] http://mirror.example/ports bookworm main # trailing\n"
    )
    (parts / "ignored.list.disabled").write_text("garbage")
    (tmp_path / "sources.list").write_text("deb http://mirror.example/security bookworm-security main\n")
    sources = host_sources(tmp_path)
    assert [(s.uri, s.suites, s.components) for s in sources] == [
        ("http://mirror.example/security", ("bookworm-security",), ("main",)),
        ("http://mirror.example/debian", ("bookworm", "bookworm-updates"), ("main", "contrib")),
        ("http://mirror.example/ports", ("bookworm",), ("main",)),
    ]
    assert sources[2].architectures == ("arm64",)
    assert sources[2].keyring == Path("/etc/keys/x.gpg")


@pytest.mark.parametrize(
    ("name", "text", "where", "words"),
    [
        ("bad.list", "deb http://mirror.example/debian\n", "bad.list:1", "URI and a suite"),
        ("bad.list", "\n# ok\nfoo http://x bookworm main\n", "bad.list:3", "expected 'deb'"),
        ("bad.list", "deb [arch=amd64 http://x bookworm main\n", "bad.list:1", "malformed"),
        ("bad.sources", "Types: deb\nSuites: bookworm\n", "bad.sources (stanza 1)", "URIs"),
        ("bad.list", "deb ftp://x bookworm main\n", "bad.list:1", "unsupported repository URI"),
    ],
)
def test_malformed_sources_name_file_and_line(
    tmp_path: Path, name: str, text: str, where: str, words: str
) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / name).write_text(text)
    with pytest.raises(InputError) as caught:
        host_sources(tmp_path)
    message = caught.value.diagnostic()
    assert where in message and words in message, message


def test_no_sources_at_all(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no apt sources"):
        host_sources(tmp_path)
