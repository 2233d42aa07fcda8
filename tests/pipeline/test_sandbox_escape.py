"""A definition's image tests are hostile code. Through ``bastion build``, a test that
tries each escape the red-team pass found (and more) must fail, as root (dev variants) and as nonroot,
and the host must be as it was."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from tests.conftest import run_cli

from bastion.oci import host_platform

pytestmark = [pytest.mark.mirror, pytest.mark.slow]

# Each test prints ESCAPED only where the escape worked; nothing is written on the host even then, since a
# file is only opened for appending (``w``). Writes to the image itself go to the test's own root
# (test_imagetest.py checks the host's copy stays as it was).
_W = 'w() { (exec 3>>"$1") 2>/dev/null; }; '
ESCAPES = {
    "sysctl": "w /proc/sys/kernel/core_pattern && echo ESCAPED",
    "sysrq": "w /proc/sysrq-trigger && echo ESCAPED",
    "remount-bind": "/bin/busybox mount -o remount,rw,bind /etc && w /etc/passwd && echo ESCAPED",
    "remount-root": "/bin/busybox mount -o remount,rw / && echo ESCAPED",
    "mount": "/bin/busybox mount -t tmpfs none /etc && echo ESCAPED",
    # Root keeps Docker's default capabilities (a80425fb, no CAP_SYS_ADMIN), others none.
    "capabilities": 'want=0000000000000000; [ "$(id -u)" = 0 ] && want=00000000a80425fb; '
    'grep -q "^CapEff:[[:space:]]*$want$" /proc/self/status || echo ESCAPED',
    "host-process": '/bin/busybox kill -0 "$HOST_PID" 2>/dev/null && echo ESCAPED',
    "host-socket": 'echo x | /bin/busybox nc -w 1 127.0.0.1 "$HOST_PORT" 2>/dev/null && echo ESCAPED',
    # Bounded: what Bastion reads of the output (a test printing more fails), the tmpfs mounts (memory),
    # and, run as root, the processes of one image user.
    "flood": "/bin/busybox head -c 17000000 /dev/zero; echo ESCAPED",
    "tmpfs": "{ w /dev/new || [ $(($(/bin/busybox stat -f -c '%b*%S' /tmp))) -gt $((1 << 30)) ] "
    "|| [ $(($(/bin/busybox stat -f -c '%b*%S' /dev/shm))) -gt $((64 << 20)) ]; } && echo ESCAPED",
    "processes": '[ "$HOST_ROOT" = 1 ] && { n=$(ulimit -u); [ "$n" = unlimited ] || [ "$n" -gt 4096 ]; } '
    "&& echo ESCAPED",
}
# An HTTP server whose status line is a terminal's escapes: the error must show them quoted.
HTTP_ESCAPES = "http-escapes"


def _definition(path: Path, host_pid: int, host_port: int) -> Path:
    lines = [
        "name: escape",
        "image: test/escape",
        'tags: ["1"]',
        f"platforms: [{host_platform()}]",
        "contents:",
        '  packages: [base-files, busybox-static, "!awk", "!mawk"]',
        "environment:",
        f'  HOST_PID: "{host_pid}"',
        f'  HOST_PORT: "{host_port}"',
        f'  HOST_ROOT: "{int(os.geteuid() == 0)}"',
        "tests:",
        # First, so that its detail is the one the error shows.
        f"  - name: {HTTP_ESCAPES}",
        "    http: /",
        "    port: 18080",
        "    timeout: 10",
        # The line is read before the connection ends (cat), so it is never reset first.
        "    start: [/bin/busybox, nc, -ll, -p, '18080', -e, /bin/busybox, sh, -c,",
        "            \"printf '\\\\033]0;owned\\\\007\\\\033[2J\\\\r\\\\n'; /bin/busybox cat >/dev/null\"]",
    ]
    for name, script in ESCAPES.items():
        quoted = (_W + script).replace("\\", "\\\\").replace('"', '\\"')
        lines += [f"  - name: {name}", f'    command: [/bin/busybox, sh, -c, "{quoted}"]',
                  "    stdout-contains: ESCAPED"]  # fmt: skip
    lines += [
        "variants:",
        "  dev: {accounts: {run-as: root}}",
        "  nonroot: {kind: dev, accounts: {run-as: '65532'}}",
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("variant", ["dev", "nonroot"])
def test_every_escape_fails_the_build_and_the_host_is_untouched(
    tmp_path: Path, cached_home: Path, variant: str
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "cache").symlink_to(cached_home.resolve() / "cache")
    core_pattern = Path("/proc/sys/kernel/core_pattern").read_bytes()
    with socket.create_server(("127.0.0.1", 0)) as listener:
        definition = _definition(tmp_path / "escape.yaml", os.getpid(), listener.getsockname()[1])
        result = run_cli("build", str(definition), "--variant", variant, home=home)
    assert result.code == 1, result.stderr
    # Every test expected its escape to work: every one of them must have failed.
    first, _, rest = result.stderr.partition("(and ")
    failed = {
        first.split("image test '")[1].split("'")[0],
        *rest.rstrip(")\n").split(" more: ")[1].split(", "),
    }
    assert failed == {*ESCAPES, HTTP_ESCAPES}, result.stderr
    assert "got 'ESCAPED" not in result.stderr
    assert "http.client.BadStatusLine: \\x1b]0;owned\\x07" in result.stderr, result.stderr
    assert "\x1b" not in result.stderr
    assert Path("/proc/sys/kernel/core_pattern").read_bytes() == core_pattern
    assert "test/escape" not in run_cli("images", home=home).stdout
