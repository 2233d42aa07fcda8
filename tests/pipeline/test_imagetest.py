"""Image tests against real root filesystems: file and absent tests on a layout of links built here;
command and HTTP tests in a real bwrap sandbox with Debian's busybox-static (from the host's mirror)."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

import bastion.pipeline._imagetest as imagetest
from bastion.catalog import AbsentTest, CommandTest, FileTest, HttpTest
from bastion.errors import EnvironmentProblem, ExitCode, InputError
from bastion.pipeline._hostids import HOST_ID_BASE
from bastion.pipeline._imagetest import OUTPUT_LIMIT, TestOutcome, run_image_tests

BUSYBOX = "/bin/busybox"
ENV = {"HOME": "/home/nonroot", "GREETING": "hi there"}


def run(rootfs: Path, *tests: object, user: str = "65532", workdir: str = "/") -> dict[str, TestOutcome]:
    outcomes = run_image_tests(rootfs, tests, user=user, env=ENV, workdir=workdir)  # type: ignore[arg-type]
    assert [outcome.name for outcome in outcomes] == [test.name for test in tests]  # type: ignore[attr-defined]
    return {outcome.name: outcome for outcome in outcomes}


def command(name: str, *argv: str, **fields: object) -> CommandTest:
    """A command test as a definition file gives it (keys in kebab-case)."""
    keys = {key.replace("_", "-"): value for key, value in fields.items()}
    return CommandTest.model_validate({"name": name, "command": argv, **keys})


def sh(name: str, script: str, **fields: object) -> CommandTest:
    """A command test through the test image's busybox shell (the runner itself never needs one)."""
    return command(name, BUSYBOX, "sh", "-c", script, **fields)


def processes_with(argv: Sequence[str]) -> list[int]:
    """Host pids whose command line is exactly ``argv``."""
    wanted = "\0".join(argv).encode() + b"\0"
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "cmdline").read_bytes() == wanted:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


# --- files, no sandbox ----------------------------------------------------------------------------


def test_file_tests_pass_through_links_resolved_inside_the_image(layout_rootfs: Path) -> None:
    outcomes = run(
        layout_rootfs,
        FileTest(name="plain", file="/etc/os-release", contains="ID=bastion-test", mode="0644"),
        FileTest(name="absolute-link", file="/etc/absolute", contains="Bastion test image"),
        FileTest(name="via-bin", file="/bin/accounts", contains="nonroot:x:65532"),
        FileTest(name="secret-mode", file="/etc/secret", mode="0600"),
        FileTest(name="directory", file="/bin", mode="0755"),
    )
    assert all(outcome.passed for outcome in outcomes.values()), outcomes


def test_file_tests_fail_with_expected_and_got(layout_rootfs: Path) -> None:
    outcomes = run(
        layout_rootfs,
        FileTest(name="missing", file="/etc/nothing"),
        FileTest(name="text", file="/etc/os-release", contains="ID=debian"),
        FileTest(name="mode", file="/etc/secret", mode="0644"),
        FileTest(name="escape", file="/etc/escape"),
        FileTest(name="dangling", file="/bin/dangling"),
        FileTest(name="loop", file="/etc/loop-a"),
        FileTest(name="not-a-file", file="/etc", contains="x"),
    )
    assert not any(outcome.passed for outcome in outcomes.values())
    assert outcomes["missing"].detail == "expected a file at /etc/nothing, nothing is there"
    assert "expected it to contain 'ID=debian', got 'ID=bastion-test" in outcomes["text"].detail
    assert outcomes["mode"].detail == "/etc/secret: mode: expected 0644, got 0600"
    # The host has /etc/hostname; the link must not reach it.
    assert Path("/etc/hostname").exists()
    assert "dangling symbolic link" in outcomes["escape"].detail
    assert "dangling symbolic link" in outcomes["dangling"].detail
    assert "too many levels of symbolic links" in outcomes["loop"].detail
    assert "got a directory" in outcomes["not-a-file"].detail


def test_absent_tests(layout_rootfs: Path) -> None:
    outcomes = run(
        layout_rootfs,
        AbsentTest(name="no-shell", absent="/bin/sh"),
        AbsentTest(name="no-bash", absent="/usr/bin/bash"),
        AbsentTest(name="under-a-file", absent="/etc/passwd/x"),
        AbsentTest(name="ash", absent="/bin/ash"),
        AbsentTest(name="dangling", absent="/bin/dangling"),
        AbsentTest(name="file", absent="/etc/os-release"),
        AbsentTest(name="loop", absent="/etc/loop-a/x"),
    )
    assert [name for name, outcome in outcomes.items() if outcome.passed] == [
        "no-shell",
        "no-bash",
        "under-a-file",
    ]
    assert (
        outcomes["ash"].detail
        == "expected nothing at /bin/ash, found a symbolic link to 'busybox' (at /usr/bin/ash)"
    )
    assert "symbolic link to '/nonexistent'" in outcomes["dangling"].detail
    assert outcomes["file"].detail == "expected nothing at /etc/os-release, found a regular file"
    assert "too many levels" in outcomes["loop"].detail


def test_file_tests_need_no_sandbox_and_commands_need_bwrap(
    layout_rootfs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing on it
    outcome = run(layout_rootfs, AbsentTest(name="no-shell", absent="/bin/sh"))["no-shell"]
    assert outcome.passed and outcome.kind == "absent" and 0 <= outcome.seconds < 10
    # A tool the user can install is missing: an input-class refusal saying what to install, not a bug.
    with pytest.raises(EnvironmentProblem) as raised:
        run(layout_rootfs, command("true", "/bin/true"))
    assert raised.value.hint == "apt-get install bubblewrap util-linux mount"
    assert raised.value.exit_code == ExitCode.USAGE


def test_rootfs_must_exist(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        run(tmp_path / "missing", AbsentTest(name="no-shell", absent="/bin/sh"))


# --- commands in the sandbox ----------------------------------------------------------------------


@pytest.mark.mirror
def test_commands_pass_and_fail_with_expected_and_got(busybox_rootfs: Path) -> None:
    outcomes = run(
        busybox_rootfs,
        command("echo", BUSYBOX, "echo", "hello", stdout_contains="hello"),
        command("exit", BUSYBOX, "false"),
        command("stdout", BUSYBOX, "echo", "hello", stdout_contains="goodbye"),
        command("stderr", BUSYBOX, "cat", "/nothing", exit_code=1, stderr_contains="No such file"),
        command("missing", "/usr/bin/nothing"),
    )
    assert outcomes["echo"].passed and outcomes["stderr"].passed
    assert outcomes["exit"].detail.startswith("exit code: expected 0, got 1")
    assert "stdout: expected to contain 'goodbye', got 'hello\\n'" in outcomes["stdout"].detail
    assert not outcomes["missing"].passed
    assert "could not start '/usr/bin/nothing'" in outcomes["missing"].detail
    assert "No such file or directory" in outcomes["missing"].detail


@pytest.mark.mirror
def test_users_come_from_the_images_own_account_files(busybox_rootfs: Path) -> None:
    ids = "echo ids=$(id -u):$(id -g)"
    outcomes = run(
        busybox_rootfs,
        sh("default", ids, stdout_contains="ids=65532:65532"),
        sh("name", ids, user="www", stdout_contains="ids=101:102"),
        sh("name-group", ids, user="www:staff", stdout_contains="ids=101:50"),
        sh("uid-gid", ids, user="65532:50", stdout_contains="ids=65532:50"),
        sh("unknown-uid", ids, user="12345", stdout_contains="ids=12345:0"),  # as runc: gid 0
        sh("root", ids, user="root", stdout_contains="ids=0:0"),
        sh("ghost", ids, user="ghost"),
        sh("no-group", ids, user="www:ghosts"),
    )
    assert [name for name, outcome in outcomes.items() if not outcome.passed] == ["ghost", "no-group"], (
        outcomes
    )
    assert outcomes["ghost"].detail == "user 'ghost' is not in the image's /etc/passwd"
    assert outcomes["no-group"].detail == "group 'ghosts' is not in the image's /etc/group"
    image_user = run(busybox_rootfs, sh("image-user", ids, stdout_contains="ids=101:102"), user="www")
    no_user = run(busybox_rootfs, sh("no-user", ids, stdout_contains="ids=0:0"), user="")  # as Docker: root
    assert image_user["image-user"].passed and no_user["no-user"].passed, (image_user, no_user)


@pytest.mark.mirror
def test_the_sandbox_has_no_network_a_root_of_its_own_and_only_the_given_environment(
    busybox_rootfs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BASTION_LEAK", "from the host")
    outcomes = run(
        busybox_rootfs,
        sh("only-loopback", 'test "$(ip -o link | wc -l)" = 1 && ip -o link', stdout_contains="lo:"),
        sh(
            "no-route",
            "nc -w 2 192.0.2.1 80 </dev/null",
            exit_code=1,
            stderr_contains="Network is unreachable",
        ),
        sh(
            "writable",
            "touch /etc/new && echo x >> /etc/passwd && echo ok",
            stdout_contains="ok",
            user="root",
        ),
        sh("own-files-only", "touch /etc/new", exit_code=1, stderr_contains="Permission denied"),
        sh("fresh-root", "test ! -e /etc/new && echo ok", stdout_contains="ok"),
        command(
            "read-only",
            BUSYBOX,
            "touch",
            "/etc/new",
            exit_code=1,
            stderr_contains="Read-only file system",
            **{"read_only": True},
        ),
        sh("tmp", "touch /tmp/new && stat -c %a /tmp", stdout_contains="1777"),
        sh(
            "env",
            'echo "$HOME|$GREETING|$PATH|${BASTION_LEAK:-none}"',
            stdout_contains="/home/nonroot|hi there|/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin|none",
        ),
        sh("no-leak", 'echo "${BASTION_LEAK:-none}"', stdout_contains="none"),
        sh("workdir", "pwd", stdout_contains="/www"),
        workdir="/www",
    )
    assert all(outcome.passed for outcome in outcomes.values()), outcomes


@pytest.mark.mirror
@pytest.mark.skipif(os.geteuid() != 0, reason="as another user, the image's uid is mapped to that user")
def test_as_root_the_image_user_meets_the_owners_and_modes_on_disk(busybox_rootfs: Path) -> None:
    before = set(Path("/tmp").glob("bastion-imagetest-*"))
    outcomes = run(
        busybox_rootfs,
        sh("secret", "cat /etc/secret", exit_code=1, stderr_contains="Permission denied"),
        sh("root-reads", "cat /etc/secret", user="root", stdout_contains="top secret"),
        sh("root-home", "ls /root", exit_code=1, stderr_contains="Permission denied"),
        sh("own-home", "ls -ldn /home/nonroot", stdout_contains="65532    65532"),
        sh("other-home", "ls /home/nonroot", user="www", exit_code=1, stderr_contains="Permission denied"),
    )
    assert all(outcome.passed for outcome in outcomes.values()), outcomes
    assert set(Path("/tmp").glob("bastion-imagetest-*")) == before


@pytest.mark.mirror
def test_a_timeout_kills_the_whole_sandbox(busybox_rootfs: Path) -> None:
    started = time.monotonic()
    outcome = run(busybox_rootfs, sh("slow", "sleep 986 & exec sleep 987", timeout=1.0))["slow"]
    assert time.monotonic() - started < 8
    assert not outcome.passed
    assert outcome.detail.startswith("timed out after 1s and was killed")
    assert processes_with([BUSYBOX, "sleep", "986"]) == processes_with(["sleep", "986"]) == []
    assert processes_with(["sleep", "987"]) == []


# --- HTTP in the sandbox --------------------------------------------------------------------------

HTTPD = (BUSYBOX, "httpd", "-f", "-p", "18080", "-h", "/www")


@pytest.mark.mirror
def test_http_tests_against_busybox_httpd(busybox_rootfs: Path) -> None:
    outcomes = run(
        busybox_rootfs,
        HttpTest(name="index", http="/", start=HTTPD, port=18080, **{"body-contains": "hello from bastion"}),
        HttpTest(name="body", http="/", start=HTTPD, port=18080, timeout=10, **{"body-contains": "goodbye"}),
        HttpTest(name="status", http="/missing", start=HTTPD, port=18080, timeout=10),
        HttpTest(name="not-found", http="/missing", start=HTTPD, port=18080, status=404, timeout=10),
        HttpTest(name="as-www", http="/", start=HTTPD, port=18080, user="www", timeout=10),
    )
    assert [name for name, outcome in outcomes.items() if not outcome.passed] == ["body", "status"], outcomes
    assert outcomes["body"].detail == (
        "GET /: body: expected to contain 'goodbye', got '<h1>hello from bastion</h1>\\n'"
    )
    assert outcomes["status"].detail == "GET /missing: status: expected 200, got 404"
    assert processes_with(HTTPD) == []


@pytest.mark.mirror
def test_http_tests_fail_clearly_when_nothing_listens(busybox_rootfs: Path) -> None:
    started = time.monotonic()
    outcomes = run(
        busybox_rootfs,
        HttpTest(name="silent", http="/", start=(BUSYBOX, "sleep", "985"), port=18080, timeout=2),
        HttpTest(name="exits", http="/", start=(BUSYBOX, "false"), port=18080, timeout=10),
        HttpTest(name="other-port", http="/", start=HTTPD, port=18081, timeout=2),
    )
    assert time.monotonic() - started < 15
    assert outcomes["silent"].detail.startswith("nothing listened on 127.0.0.1:18080 within 2s")
    assert outcomes["exits"].detail.startswith(
        "'/bin/busybox' exited with 1 before anything listened on port 18080"
    )
    assert outcomes["other-port"].detail.startswith("nothing listened on 127.0.0.1:18081 within 2s")
    assert processes_with([BUSYBOX, "sleep", "985"]) == processes_with(HTTPD) == []


# --- confinement: a definition's tests are hostile code -------------------------------------------

# Each script exits 0 only if the escape it tries is refused, and names what got through otherwise. Nothing
# is written anywhere on the host even when an escape works: ``w`` opens a file for appending, writing nothing.
_OPENS = 'w() { (exec 3>>"$1") 2>/dev/null; }; '
ESCAPES = {
    # A host-global knob: the host's core_pattern runs a program as the host's root on every crash.
    "sysctl": "if w /proc/sys/kernel/core_pattern || w /proc/sysrq-trigger; then echo ESCAPED; exit 1; fi",
    # Each test writes to a root of its own; with CAP_SYS_ADMIN it could remount or mount over it.
    "remount": "if mount -o remount,rw,bind /etc 2>/dev/null || mount -o remount,ro / 2>/dev/null; "
    "then echo ESCAPED; exit 1; fi",
    "new-mount": "if mount -t tmpfs none /etc 2>/dev/null; then echo ESCAPED; exit 1; fi",
    # Root keeps Docker's default set (a80425fb: no SYS_ADMIN, SYS_PTRACE, NET_ADMIN, DAC_READ_SEARCH),
    # confined to the sandbox's user namespace; anyone else keeps none.
    "capabilities": 'want=0000000000000000; [ "$(id -u)" = 0 ] && want=00000000a80425fb; '
    'grep -q "^CapEff:[[:space:]]*$want$" /proc/self/status && grep -q "^CapBnd:[[:space:]]*$want$" /proc/self/status '
    "&& grep -q '^NoNewPrivs:[[:space:]]*1$' /proc/self/status",
    # Writes through every path to the root reach only the test's own layer: the host's tree is checked after.
    "write-through": "for f in /etc/passwd /proc/self/root/etc/passwd /proc/1/root/etc/passwd /proc/1/cwd/etc/passwd; "
    "do echo ESCAPED >> $f 2>/dev/null; done; touch /proc/1/root/new /new 2>/dev/null; true",
    "host-processes": 'if kill -0 "$HOST_PID" 2>/dev/null || [ -e "/proc/$HOST_PID/cwd" ] && [ "$HOST_PID" -gt 9 ]; '
    "then echo ESCAPED; exit 1; fi",
    "host-socket": 'if echo x | nc -w 1 127.0.0.1 "$HOST_PORT" 2>/dev/null; then echo ESCAPED; exit 1; fi',
    # Memory the host shares: every writable tmpfs is bounded (by default each may take half the RAM).
    "unbounded-tmpfs": "if w /dev/new || [ $(($(stat -f -c '%b*%S' /tmp))) -gt $((1 << 30)) ] "
    "|| [ $(($(stat -f -c '%b*%S' /dev/shm))) -gt $((64 << 20)) ]; then echo ESCAPED; exit 1; fi",
}


@pytest.mark.mirror
@pytest.mark.parametrize("user", ["root", "65532"])
def test_no_escape_from_the_sandbox(busybox_rootfs: Path, monkeypatch: pytest.MonkeyPatch, user: str) -> None:
    """The attacks of the red-team pass, as root (dev variants) and as nonroot (runtime variants)."""
    import socket

    listener = socket.create_server(("127.0.0.1", 0))
    before = {p: p.stat().st_mtime_ns for p in busybox_rootfs.rglob("*") if not p.is_symlink()}
    core_pattern = Path("/proc/sys/kernel/core_pattern").read_bytes()
    try:
        env = {**ENV, "HOST_PID": str(os.getpid()), "HOST_PORT": str(listener.getsockname()[1])}
        outcomes = run_image_tests(
            busybox_rootfs,
            [sh(name, _OPENS + script) for name, script in ESCAPES.items()],
            user=user,
            env=env,
            workdir="/",
        )
    finally:
        listener.close()
    failed = {o.name: o.detail for o in outcomes if not o.passed}
    assert failed == {}, failed
    assert Path("/proc/sys/kernel/core_pattern").read_bytes() == core_pattern
    after = {p: p.stat().st_mtime_ns for p in busybox_rootfs.rglob("*") if not p.is_symlink()}
    assert after == before


@pytest.mark.mirror
@pytest.mark.skipif(os.geteuid() != 0, reason="as another user, the sandbox runs as that user")
@pytest.mark.parametrize(("user", "uid"), [("root", 0), ("65532", 65532)])
def test_as_root_the_sandbox_holds_only_an_unprivileged_host_id(
    busybox_rootfs: Path, user: str, uid: int
) -> None:
    """Seen from the host, the image's root is HOST_ID_BASE, never the host's root."""
    import threading

    marker = [BUSYBOX, "sleep", f"7.{uid}"]
    done: list[TestOutcome] = []
    thread = threading.Thread(
        target=lambda: done.extend(
            run_image_tests(busybox_rootfs, [command("hold", *marker)], user=user, env=ENV, workdir="/")
        )
    )
    thread.start()
    try:
        deadline = time.monotonic() + 5
        while not (pids := processes_with(marker)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert pids, "the sandboxed process never started"
        status = Path(f"/proc/{pids[0]}/status").read_text()
        ids = {
            line.split(":")[0]: line.split()[1:]
            for line in status.splitlines()
            if line[:4] in ("Uid:", "Gid:")
        }
        assert ids == {"Uid": [str(HOST_ID_BASE + uid)] * 4, "Gid": [str(HOST_ID_BASE + uid)] * 4}, ids
        assert f"CapEff:\t{'00000000a80425fb' if uid == 0 else '0000000000000000'}" in status
    finally:
        thread.join()
    assert done and done[0].passed, done


@pytest.mark.mirror
def test_output_past_the_limit_fails_the_test_and_is_never_read_whole(busybox_rootfs: Path) -> None:
    """A test printing without end must not make Bastion read it all into memory."""
    import resource

    size = 6 * OUTPUT_LIMIT
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    outcome = run(
        busybox_rootfs, sh("flood", f"head -c {size} /dev/zero; echo ESCAPED", stdout_contains="ESCAPED")
    )
    assert time.monotonic() - started < 60
    assert (
        outcome["flood"].detail
        == f"stdout: {size + 8} bytes, more than the {OUTPUT_LIMIT} an image test may print"
    )
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024
    assert grown < 3 * OUTPUT_LIMIT, grown


@pytest.mark.mirror
@pytest.mark.skipif(os.geteuid() != 0, reason="as another user, processes are counted with the user's own")
@pytest.mark.parametrize("user", ["root", "65532"])
def test_as_root_a_fork_bomb_meets_the_process_limit(
    busybox_rootfs: Path, monkeypatch: pytest.MonkeyPatch, user: str
) -> None:
    """Processes are bounded per sandboxed host id, whatever ids they switch to inside. The shell that
    meets the limit dies (ash cannot fork); they are counted after with a glob, which needs no fork."""
    monkeypatch.setattr(imagetest, "PROCESS_LIMIT", 40)
    script = (
        'as=""; [ "$(id -u)" = 0 ] && as="chpst -u"; (i=0; while [ $i -lt 60 ]; do '
        "$as${as:+ www} sleep 30 & $as${as:+ nonroot} sleep 30 & i=$((i + 2)); done) 2>/dev/null; "
        "set -- /proc/[0-9]*; echo processes=$#; test $# -le 40"
    )
    started = time.monotonic()
    outcome = run(busybox_rootfs, sh("bomb", script, timeout=20), user=user)["bomb"]
    assert outcome.passed, outcome
    assert time.monotonic() - started < 20
    assert processes_with(["sleep", "30"]) == []


@pytest.mark.mirror
def test_a_servers_own_bytes_are_quoted_in_the_outcome(busybox_rootfs: Path) -> None:
    """A status line of control characters (a terminal's escapes) is shown quoted, never raw."""
    # The line is read before the connection ends (cat), so it is never reset first.
    script = "printf '\\033]0;owned\\007\\033[2J\\r\\n'; /bin/busybox cat >/dev/null"
    start = (BUSYBOX, "nc", "-ll", "-p", "18080", "-e", BUSYBOX, "sh", "-c", script)
    outcome = run(busybox_rootfs, HttpTest(name="escapes", http="/", start=start, port=18080, timeout=10))
    detail = outcome["escapes"].detail
    assert detail.startswith("GET / on port 18080 failed: 'http.client.BadStatusLine: "), detail
    assert "\x1b" not in detail and "\\x1b]0;owned\\x07" in detail, detail
