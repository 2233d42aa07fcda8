"""The start-up checks on hand-made trees: what the kernel and runc would do with odd paths (the same
checks run through ``bastion build`` on real packages in test_definition_start.py)."""

from __future__ import annotations

import pytest

from bastion.errors import InputError
from bastion.oci import LayerEntry, RuntimeConfig
from bastion.pipeline._assemble import Node, Rootfs
from bastion.pipeline._entrypoint import check_startable


def _node(path: str, kind: str, *, link: str = "", data: bytes | None = None, mode: int = 0o755) -> Node:
    return Node(LayerEntry(path, kind, mode, 0, 0, 0, linkname=link, data=data), "test")  # type: ignore[arg-type]


def _tree() -> Rootfs:
    nodes = [
        _node("usr", "dir"),
        _node("usr/bin", "dir"),
        _node("bin", "symlink", link="usr/bin"),
        _node("usr/bin/prog", "file", data=b"\x7fELF\x02\x01\x01"),
        _node("usr/bin/hard", "hardlink", link="usr/bin/prog"),
        _node("usr/bin/escape", "symlink", link="../../../../usr/bin/prog"),
        _node("usr/bin/loop", "symlink", link="loop"),
        _node("usr/bin/empty", "file", data=b"#!   \n"),
        _node("usr/bin/text", "file", data=b"hello\n"),
        *(_node(f"usr/bin/s{i}", "file", data=f"#!/usr/bin/s{i % 5 + 1} -x\n".encode()) for i in range(1, 6)),
    ]
    return Rootfs({node.entry.path: node for node in nodes})


def _check(*entrypoint: str) -> None:
    runtime = RuntimeConfig(entrypoint=entrypoint, env=("PATH=/usr/local/bin:/bin",))
    check_startable(_tree(), runtime, variant="runtime", where="app.yaml")


@pytest.mark.parametrize("program", ["prog", "hard", "/bin/hard", "/usr/bin/escape", "../usr/bin/prog"])
def test_programs_that_resolve_inside_the_image_pass(program: str) -> None:
    _check(program)


@pytest.mark.parametrize(
    ("program", "message"),
    [
        ("/", "entrypoint: / is a dir in the image, not a program"),
        ("/.", "entrypoint: /. is a dir in the image, not a program"),
        ("", "entrypoint: '' is not found in the image's PATH '/usr/local/bin:/bin'"),
        ("loop", "entrypoint: 'loop' is not found in the image's PATH"),
        ("/bin/loop", "entrypoint: /bin/loop is not in the image (too many symlinks at /usr/bin/loop)"),
        ("/bin/prog/x", "/bin/prog/x is not in the image (/usr/bin/prog is a file, not a directory)"),
        ("/usr/bin/s1", "entrypoint: /usr/bin/s1: more than 4 nested '#!' interpreters"),
        ("/usr/bin/empty", "/usr/bin/empty starts with '#!' but names no interpreter"),
        ("/usr/bin/text", "/usr/bin/text is neither an ELF program nor a '#!' script"),
    ],
)
def test_programs_that_could_not_start_are_refused(program: str, message: str) -> None:
    with pytest.raises(InputError) as caught:
        _check(program)
    assert caught.value.diagnostic().startswith("app.yaml: variants.runtime: ")
    assert message in caught.value.diagnostic()
