"""Run an image's declared tests against its assembled root filesystem.

File and absent tests look at the root filesystem on disk, resolving symbolic links as the kernel would
inside the image (an absolute target is relative to the image's root, ``..`` stops at it), so no link
can lead outside. Command and HTTP tests run in a ``bwrap`` sandbox as a container runtime runs an
image: every namespace unshared (so the network is loopback only), a fresh ``/proc``, ``/dev`` and
``/tmp``, the image's user, only the given environment, and a root the test may write to but that no
other test sees (``read-only: true`` on a test makes it read-only, as ``docker run --read-only``). The
image needs no shell.

A definition's tests are untrusted code, so the sandboxed process never holds a privileged host
identity. Run as root (as CI does), the tree on disk is owned by unprivileged host ids: image id ``n`` is
host id ``HOST_ID_BASE + n`` (the 64K block systemd's "UIDs and GIDs" document sets aside for files of
foreign OS images, owned by no host account; :func:`host_owner`, :func:`give_to_sandbox`). Each test
mounts the tree under an overlay of its own (in a private mount namespace), becomes such an id
(``setpriv``), and starts bwrap, whose user namespace Bastion maps: all 65,536 image ids to their host
ids (``--userns-block-fd``), so owners and modes apply as in the image and root in the image may chown.
Root keeps Docker's default capabilities, confined to that namespace; no process keeps CAP_SYS_ADMIN
(remount, mount), CAP_SYS_PTRACE or CAP_NET_ADMIN, and none holds a host-privileged id, so
``/proc/sys`` and other host-global files, owned by the host's root, are out of reach. Run as another
user, bwrap maps the image's uid to that user alone, and the tests share the build's copy of the tree
(written for the tests and thrown away after). Supplementary groups are never set.
"""

from __future__ import annotations

import fcntl
import json
import os
import select
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO

from bastion.catalog import AbsentTest, CommandTest, FileTest, HttpTest
from bastion.errors import EnvironmentProblem, InputError
from bastion.pipeline._hostids import host_owner, map_ids
from bastion.sandbox import PROCESS_LIMIT, ROOT_CAPS

__all__ = ["OUTPUT_LIMIT", "PROCESS_LIMIT", "ImageCheck", "TestOutcome", "kind_of", "run_image_tests"]

# Linux's MAXSYMLINKS (include/linux/namei.h): more links than this in one lookup is ELOOP.
_MAX_SYMLINKS = 40
# What Docker sets when the image's environment has no PATH.
_DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_BWRAP = ("bwrap", "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL")
# Bounds on what one test may take from the host, which a test must not exhaust for the others (the
# project brief: bound size, count and time). /tmp and /dev/shm are memory (tmpfs, by default half of it
# each); /dev/shm is as big as Docker makes it (moby daemon/config DefaultShmSize, 64 MiB).
_TMP_BYTES = 1 << 30
_SHM_BYTES = 64 << 20
#: Output of one test Bastion reads (each of stdout and stderr); a test that prints more fails.
OUTPUT_LIMIT = 16 << 20
# As root, the bounds a source build's sandbox has too (bastion.sandbox): PROCESS_LIMIT, RLIMIT_NPROC of
# each test's host id (counted for the host id whose user namespace holds its processes, whatever ids
# they switch to inside it), and ROOT_CAPS, image root's capabilities (Docker's default set, confined to
# that user namespace).
# Mounted fresh in the sandbox over whatever the image has there. /dev stays read-only but for its
# devices (bind mounts of their own) and /dev/shm, so no tmpfs without a bound is writable.
_FRESH = (
    "--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--size", str(_TMP_BYTES), "--tmpfs", "/tmp",  # noqa: S108
    "--perms", "1777", "--size", str(_SHM_BYTES), "--tmpfs", "/dev/shm", "--remount-ro", "/dev",  # noqa: S108
)  # fmt: skip
# As root: the tree (bound to lower/) under a fresh overlay per test, so a test writes to a root of its own
# (upper/, thrown away after) as in a container; the overlay's options name only paths made here.
_OVERLAY = (
    'mount --bind -- "$1" "$2/lower" && mount -t overlay overlay '
    '-o "lowerdir=$2/lower,upperdir=$2/upper,workdir=$2/work" "$2/root" || exit 125; shift 2; exec "$@"'
)
_TAIL = 400
_NS_GET_USERNS = 0xB701  # _IO(0xb7, 0x1), linux/nsfs.h
_SPAWN = 10.0  # seconds nsenter and Python may take to start, on top of the HTTP client's timeout


@dataclass(frozen=True)
class TestOutcome:
    """The result of one test; ``detail`` says why it failed (expected against got), ``kind`` is
    :func:`kind_of`'s, ``seconds`` how long it took."""

    __test__ = False

    name: str
    passed: bool
    detail: str = ""
    kind: str = ""
    seconds: float = 0.0


#: What :func:`run_image_tests` runs: the tests a definition declares.
ImageCheck = FileTest | AbsentTest | CommandTest | HttpTest


def kind_of(test: ImageCheck) -> str:
    """``file``, ``absent``, ``command`` or ``http``: the key that makes a test of its kind."""
    kinds = ((HttpTest, "http"), (CommandTest, "command"), (AbsentTest, "absent"), (FileTest, "file"))
    return next(name for kind, name in kinds if isinstance(test, kind))


class _Failed(Exception):
    """A test cannot even be run; the message is its outcome's detail."""


def run_image_tests(
    rootfs: Path, tests: Sequence[ImageCheck], *, user: str, env: Mapping[str, str], workdir: str
) -> list[TestOutcome]:
    """Run ``tests`` against the root filesystem at ``rootfs``, in order, one outcome per test.

    ``user`` is the image config's ``User`` (``uid``, ``name``, ``name:group`` or ``uid:gid``, names
    looked up in the image's own ``/etc/passwd`` and ``/etc/group``); a test's own ``user`` wins.
    ``env`` and ``workdir`` are the image config's environment and working directory.
    """
    if not rootfs.is_dir():
        raise InputError(f"{rootfs} is not a directory", where="image tests")
    sandboxed = [test for test in tests if isinstance(test, HttpTest | CommandTest)]
    with _Sandbox.open(rootfs, env=env, workdir=workdir or "/", needed=bool(sandboxed)) as sandbox:
        outcomes = []
        for test in tests:
            started = time.monotonic()
            try:
                outcome = _run_one(rootfs, sandbox, test, user)
            except _Failed as failure:
                outcome = TestOutcome(test.name, False, str(failure))
            seconds = round(time.monotonic() - started, 3)
            outcomes.append(replace(outcome, kind=kind_of(test), seconds=seconds))
        return outcomes


def _run_one(rootfs: Path, sandbox: _Sandbox, test: ImageCheck, user: str) -> TestOutcome:
    if isinstance(test, HttpTest):
        return sandbox.http(test, _resolve_user(rootfs, test.user or user))
    if isinstance(test, CommandTest):
        return sandbox.command(test, _resolve_user(rootfs, test.user or user))
    if isinstance(test, AbsentTest):
        return _absent(rootfs, test)
    if isinstance(test, FileTest):
        return _file(rootfs, test)
    raise InputError(f"test {getattr(test, 'name', test)!r} is of no kind this runner knows")


# --- files ----------------------------------------------------------------------------------------


def _resolve(rootfs: Path, path: str, *, follow_last: bool) -> Path:
    """The host path of ``path`` in the image, every symlink resolved inside ``rootfs`` (the last one
    only with ``follow_last``). The result need not exist."""
    pending = deque(part for part in path.split("/") if part not in ("", "."))
    resolved: list[str] = []
    links = 0
    while pending:
        part = pending.popleft()
        if part == "..":
            if resolved:  # ".." at the root is the root, as in a chroot
                resolved.pop()
            continue
        here = rootfs.joinpath(*resolved, part)
        if here.is_symlink() and (pending or follow_last):
            links += 1
            if links > _MAX_SYMLINKS:
                raise _Failed(f"{path}: too many levels of symbolic links (a loop?)")
            target = str(here.readlink())
            if target.startswith("/"):
                resolved.clear()
            pending.extendleft(reversed([p for p in target.split("/") if p not in ("", ".")]))
        else:
            resolved.append(part)
    return rootfs.joinpath(*resolved)


def _absent(rootfs: Path, test: AbsentTest) -> TestOutcome:
    where = _resolve(rootfs, test.absent, follow_last=False)
    try:
        info = where.lstat()
    except (FileNotFoundError, NotADirectoryError):
        return TestOutcome(test.name, True)
    shown = "/" + where.relative_to(rootfs).as_posix()
    kind = _kind(info.st_mode)
    if stat.S_ISLNK(info.st_mode):
        kind += f" to {str(where.readlink())!r}"
    via = "" if shown == test.absent else f" (at {shown})"
    return TestOutcome(test.name, False, f"expected nothing at {test.absent}, found a {kind}{via}")


def _file(rootfs: Path, test: FileTest) -> TestOutcome:
    where = _resolve(rootfs, test.file, follow_last=True)
    try:
        info = where.stat()
    except (FileNotFoundError, NotADirectoryError):
        dangling = _resolve(rootfs, test.file, follow_last=False).is_symlink()
        why = "it is a dangling symbolic link" if dangling else "nothing is there"
        return TestOutcome(test.name, False, f"expected a file at {test.file}, {why}")
    problems = []
    if test.mode is not None and stat.S_IMODE(info.st_mode) != int(test.mode, 8):
        problems.append(f"mode: expected {test.mode}, got {stat.S_IMODE(info.st_mode):04o}")
    if test.contains is not None:
        if not stat.S_ISREG(info.st_mode):
            problems.append(
                f"expected a regular file to search for {test.contains!r}, got a {_kind(info.st_mode)}"
            )
        else:
            try:
                text = where.read_bytes().decode("utf-8", errors="replace")
            except OSError as error:
                raise _Failed(f"{test.file}: cannot read it: {error.strerror}") from None
            if test.contains not in text:
                problems.append(f"expected it to contain {test.contains!r}, got {_head(text)}")
    return TestOutcome(test.name, not problems, f"{test.file}: " + "; ".join(problems) if problems else "")


def _kind(mode: int) -> str:
    kinds = {stat.S_ISLNK: "symbolic link", stat.S_ISDIR: "directory", stat.S_ISREG: "regular file"}
    return next((name for check, name in kinds.items() if check(mode)), "special file")


def _head(text: str) -> str:
    return repr(text[:_TAIL]) + ("..." if len(text) > _TAIL else "")


def _tail(text: str) -> str:
    return ("..." if len(text) > _TAIL else "") + repr(text[-_TAIL:])


# --- users ----------------------------------------------------------------------------------------


def _database(rootfs: Path, path: str) -> list[list[str]]:
    """The entries of the image's passwd or group file (never the host's), split on ':'."""
    try:
        text = _resolve(rootfs, path, follow_last=True).read_text(encoding="utf-8", errors="replace")
    except (FileNotFoundError, NotADirectoryError):
        return []
    return [line.split(":") for line in text.splitlines() if line and not line.startswith("#")]


def _resolve_user(rootfs: Path, spec: str) -> tuple[int, int]:
    """The uid and gid the image's ``User`` means, as runc resolves it (libcontainer/user.GetExecUser):
    no user is root, and a uid missing from /etc/passwd runs with gid 0."""
    name, _, group = (spec or "0").partition(":")
    passwd = [
        e for e in _database(rootfs, "/etc/passwd") if len(e) >= 4 and e[2].isdigit() and e[3].isdigit()
    ]
    entry = next((e for e in passwd if (e[2] if name.isdigit() else e[0]) == name), None)
    if entry is None and not name.isdigit():
        raise _Failed(f"user {name!r} is not in the image's /etc/passwd")
    uid, gid = (int(name), 0) if entry is None else (int(entry[2]), int(entry[3]))
    if group.isdigit():
        gid = int(group)
    elif group:
        groups = [
            e for e in _database(rootfs, "/etc/group") if len(e) >= 3 and e[0] == group and e[2].isdigit()
        ]
        if not groups:
            raise _Failed(f"group {group!r} is not in the image's /etc/group")
        gid = int(groups[0][2])
    return uid, gid


# --- the sandbox ----------------------------------------------------------------------------------


@dataclass
class _Run:
    """A sandboxed process, started by :meth:`_Sandbox.running`."""

    process: subprocess.Popen[bytes]
    status: IO[bytes]  # bwrap's --json-status-fd: child-pid first, exit-code once the command ran
    stdout: IO[bytes]
    stderr: IO[bytes]
    child_pid: int | None = None
    pid_namespace: int | None = None

    def read_status(self, deadline: float) -> dict[str, int]:
        """The next JSON document bwrap writes, {} at its end or at the deadline."""
        ready, _, _ = select.select([self.status], [], [], max(0.0, deadline - time.monotonic()))
        line = self.status.readline() if ready else b""
        found: dict[str, int] = json.loads(line) if line.strip() else {}
        self.child_pid = found.get("child-pid", self.child_pid)
        self.pid_namespace = found.get("pid-namespace", self.pid_namespace)
        return found

    def output(self) -> tuple[str, str]:
        """stdout and stderr, each at most :data:`OUTPUT_LIMIT` bytes (the start of it)."""
        texts = []
        for stream in (self.stdout, self.stderr):
            stream.seek(0)
            texts.append(stream.read(OUTPUT_LIMIT).decode("utf-8", errors="replace"))
        return texts[0], texts[1]

    def too_long(self) -> str:
        """What the test printed past :data:`OUTPUT_LIMIT`, "" if nothing."""
        sizes = {name: os.fstat(stream.fileno()).st_size for name, stream in
                 (("stdout", self.stdout), ("stderr", self.stderr))}  # fmt: skip
        return "; ".join(
            f"{name}: {size} bytes, more than the {OUTPUT_LIMIT} an image test may print"
            for name, size in sizes.items()
            if size > OUTPUT_LIMIT
        )

    def kill(self) -> None:
        """Kill bwrap's process group if it still runs, then the sandbox's init if it outlived it (it
        should not: --die-with-parent); its pid namespace, and every process in it, go with it."""
        if self.process.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        for _ in range(500):
            if self.child_pid is None or not _alive_in(self.child_pid, self.pid_namespace):
                return
            with suppress(ProcessLookupError):
                os.kill(self.child_pid, signal.SIGKILL)
            time.sleep(0.01)


def _alive_in(pid: int, pid_namespace: int | None) -> bool:
    """Whether ``pid`` runs in that pid namespace (a pid may be reused; a zombie, left to the host's init
    to reap, is dead)."""
    try:
        ours = Path(f"/proc/{pid}/ns/pid").stat().st_ino == pid_namespace
        return ours and Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return False


class _Sandbox:
    def __init__(self, rootfs: Path, env: Mapping[str, str], workdir: str, mountpoint: Path | None) -> None:
        self.rootfs = rootfs
        self.env = {"PATH": _DEFAULT_PATH, **env}
        self.workdir = workdir
        self.mountpoint = mountpoint

    @classmethod
    @contextmanager
    def open(cls, rootfs: Path, *, env: Mapping[str, str], workdir: str, needed: bool) -> Iterator[_Sandbox]:
        as_root = needed and os.geteuid() == 0
        tools = (
            ["bwrap", "nsenter", *(["unshare", "setpriv", "mount", "prlimit"] if as_root else [])]
            if needed
            else []
        )
        if missing := [tool for tool in tools if shutil.which(tool) is None]:
            raise EnvironmentProblem(
                f"{', '.join(missing)} not found: image tests run in a bubblewrap sandbox",
                hint="apt-get install bubblewrap util-linux mount",
            )
        # As root, each test gets a directory here (under /tmp, which bwrap needs anyway) where the tree is
        # mounted, in a private mount namespace, under an overlay the unprivileged host id can reach
        # whatever the modes of rootfs and the directories above it.
        mountpoint = Path(tempfile.mkdtemp(prefix="bastion-imagetest-", dir="/tmp")) if as_root else None
        try:
            if mountpoint:
                mountpoint.chmod(0o755)
            yield cls(rootfs, env, workdir, mountpoint)
        finally:
            if mountpoint:
                mountpoint.rmdir()

    @contextmanager
    def _root(self) -> Iterator[Path | None]:
        """As root, a fresh directory for one test: ``lower`` (the tree is bound there), ``upper`` and
        ``work`` (the overlay's writable layer, owned like the tree's root), ``root`` (the overlay)."""
        if self.mountpoint is None:
            yield None
            return
        run = Path(tempfile.mkdtemp(prefix="run-", dir=self.mountpoint))
        try:
            run.chmod(0o755)
            for name in ("lower", "upper", "work", "root"):
                (run / name).mkdir()
            # The overlay's root takes the upper layer's owner and mode: the tree's owner, and 0755 as
            # materialise writes it (the directory the tree was written to may be closed to others).
            top = self.rootfs.lstat()
            os.chown(run / "upper", top.st_uid, top.st_gid)
            (run / "upper").chmod(0o755)
            yield run
        finally:
            # The mounts live only in the test's private mount namespace, gone with its last process: here
            # lower and root are empty directories (rmdir refuses anything else), upper and work hold only
            # what the test wrote.
            for name in ("upper", "work"):
                shutil.rmtree(run / name, ignore_errors=True)
            for name in ("lower", "root", ""):
                with suppress(FileNotFoundError):
                    (run / name).rmdir()

    def _argv(
        self,
        command: Sequence[str],
        uid: int,
        gid: int,
        fds: Sequence[int],
        run: Path | None,
        read_only: bool,
    ) -> list[str]:
        argv = [*_BWRAP, "--json-status-fd", str(fds[0])]
        if run is not None:
            # bwrap reports its child (info) and waits (block) until the parent has mapped every image id
            # (0-65535) to its host id.
            argv += ["--unshare-user", "--info-fd", str(fds[1]), "--userns-block-fd", str(fds[2])]
            if uid == 0:
                argv += [part for cap in ROOT_CAPS for part in ("--cap-add", cap)]
        argv += ["--bind", str(run / "root" if run else self.rootfs), "/", *_FRESH]
        if read_only:
            argv += ["--remount-ro", "/"]
        argv += ["--uid", str(uid), "--gid", str(gid), "--chdir", self.workdir, "--clearenv"]
        for key, value in self.env.items():
            argv += ["--setenv", key, value]
        argv += ["--", *command]
        if run is None:
            return argv
        # As root: mount the tree, then become an unprivileged host id (with no capability, bounding set or
        # inheritable, left) to start bwrap, whose user namespace the parent maps (running()): never to the
        # host's root, whose files (/proc/sys among them) stay out of reach.
        host_uid, host_gid = host_owner(uid, gid)
        become = ["prlimit", f"--nproc={PROCESS_LIMIT}", "--", "setpriv", f"--reuid={host_uid}", f"--regid={host_gid}", "--clear-groups",
                  "--inh-caps=-all", "--bounding-set=-all", "--"]  # fmt: skip
        unshare = ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", _OVERLAY, "sh"]
        return [*unshare, str(self.rootfs), str(run), *become, *argv]

    @contextmanager
    def running(
        self, command: Sequence[str], uid: int, gid: int, *, read_only: bool = False
    ) -> Iterator[_Run]:
        """Start ``command`` in the sandbox; on leaving, it is killed if it still runs."""
        with ExitStack() as stack:
            run_dir = stack.enter_context(self._root())
            status_read, status_write = os.pipe()
            status = stack.enter_context(os.fdopen(status_read, "rb"))
            info_read, info_write = os.pipe() if run_dir else (None, None)
            block_read, block_write = os.pipe() if run_dir else (None, None)
            stdout = stack.enter_context(tempfile.TemporaryFile())
            stderr = stack.enter_context(tempfile.TemporaryFile())
            if os.geteuid() == 0:
                # As runc does (libcontainer's fixStdioPermissions): the image's user owns its stdout and
                # stderr, so that re-opening them (nginx's ``access_log /dev/stdout``) is allowed.
                for stream in (stdout, stderr):
                    os.fchown(stream.fileno(), *host_owner(uid, gid))
            passed = tuple(fd for fd in (status_write, info_write, block_read) if fd is not None)
            try:
                process = subprocess.Popen(
                    self._argv(command, uid, gid, passed, run_dir, read_only),
                    stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr, pass_fds=passed,
                    start_new_session=True,
                )  # fmt: skip
            finally:
                for fd in passed:
                    os.close(fd)
            run = _Run(process, status, stdout, stderr)
            try:
                if info_read is not None and block_write is not None:
                    map_ids(info_read, block_write, time.monotonic() + _SPAWN)
                yield run
            finally:
                run.kill()

    def command(self, test: CommandTest, user: tuple[int, int]) -> TestOutcome:
        timed_out = False
        with self.running(test.command, *user, read_only=test.read_only) as run:
            try:
                run.process.wait(timeout=test.timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
                run.kill()
            status: dict[str, int] = {}
            while found := run.read_status(time.monotonic()):
                status |= found
            stdout, stderr = run.output()
            too_long = run.too_long()
        if too_long:
            return TestOutcome(test.name, False, too_long)
        if timed_out:
            return TestOutcome(test.name, False, f"timed out after {test.timeout:g}s and was killed; "
                               f"stdout {_tail(stdout)}, stderr {_tail(stderr)}")  # fmt: skip
        if "exit-code" not in status:
            return TestOutcome(test.name, False, f"could not start {test.command[0]!r}: {_tail(stderr)}")
        problems = []
        if status["exit-code"] != test.exit_code:
            problems.append(f"exit code: expected {test.exit_code}, got {status['exit-code']}")
        for label, wanted, got in (
            ("stdout", test.stdout_contains, stdout),
            ("stderr", test.stderr_contains, stderr),
        ):
            if wanted is not None and wanted not in got:
                problems.append(f"{label}: expected to contain {wanted!r}, got {_tail(got)}")
        if problems and not any(p.startswith("stderr") for p in problems):
            problems.append(f"stderr {_tail(stderr)}")
        return TestOutcome(test.name, not problems, "; ".join(problems))

    def http(self, test: HttpTest, user: tuple[int, int]) -> TestOutcome:
        deadline = time.monotonic() + test.timeout
        with self.running(test.start, *user, read_only=test.read_only) as run:
            if run.child_pid is None:
                run.read_status(deadline)
            if run.child_pid is None:
                raise _Failed(f"the sandbox did not start: {_tail(run.output()[1])}")
            while not _listening(run.child_pid, test.port):
                if run.process.poll() is not None:
                    raise _Failed(f"{test.start[0]!r} exited with {run.process.returncode} before anything "
                                  f"listened on port {test.port}; stderr {_tail(run.output()[1])}")  # fmt: skip
                if time.monotonic() > deadline:
                    raise _Failed(f"nothing listened on 127.0.0.1:{test.port} within {test.timeout:g}s; "
                                  f"stderr {_tail(run.output()[1])}")  # fmt: skip
                time.sleep(0.05)
            status, body = self._get(run.child_pid, test, max(1.0, deadline - time.monotonic()))
        problems = []
        if status != test.status:
            problems.append(f"status: expected {test.status}, got {status}")
        if test.body_contains is not None and test.body_contains not in body:
            problems.append(f"body: expected to contain {test.body_contains!r}, got {_head(body)}")
        return TestOutcome(
            test.name, not problems, f"GET {test.http}: " + "; ".join(problems) if problems else ""
        )

    def _get(self, child_pid: int, test: HttpTest, timeout: float) -> tuple[int, str]:
        """GET the path from inside the sandbox's network namespace, with the host's Python."""
        net = f"/proc/{child_pid}/ns/net"
        with ExitStack() as stack:
            enter, keep = ["nsenter", f"--net={net}"], []
            if os.geteuid() != 0:
                # A user may enter the namespace only from the user namespace that owns it (bwrap's first
                # one, which no process is left in): ioctl_ns(2) NS_GET_USERNS gives it.
                owner = fcntl.ioctl(stack.enter_context(Path(net).open("rb")).fileno(), _NS_GET_USERNS)
                stack.callback(os.close, owner)
                enter, keep = [*enter, f"--user=/proc/self/fd/{owner}", "--preserve-credentials"], [owner]
            try:
                done = subprocess.run(
                    [*enter, "--", sys.executable, "-I", "-c", _CLIENT, str(test.port), test.http, str(timeout)],
                    capture_output=True, timeout=timeout + _SPAWN, check=False, pass_fds=keep,
                )  # fmt: skip
            except subprocess.TimeoutExpired:
                raise _Failed(f"GET {test.http} on port {test.port}: no answer within {timeout:g}s") from None
        if done.returncode != 0:
            error = done.stderr.decode("utf-8", errors="replace").strip().splitlines()
            # The last line may hold the server's own bytes (BadStatusLine): quoted, as outputs are.
            raise _Failed(
                f"GET {test.http} on port {test.port} failed: {_tail(error[-1]) if error else done.returncode}"
            )
        answer = json.loads(done.stdout)
        return int(answer["status"]), str(answer["body"])


# Runs in the sandbox's network namespace: plain http.client, so no proxy from the environment applies.
_CLIENT = """
import http.client, json, sys
port, path, timeout = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
connection.request("GET", path)
response = connection.getresponse()
body = response.read(1 << 20).decode("utf-8", errors="replace")
json.dump({"status": response.status, "body": body}, sys.stdout)
"""


def _listening(pid: int, port: int) -> bool:
    """Whether a TCP socket listens on ``port`` for 127.0.0.1 in the network namespace of ``pid``."""
    # proc(5) /proc/net/tcp: addresses are the kernel's words in hex, ports big-endian hex; 0A is LISTEN.
    loopback = format(int.from_bytes(socket.inet_aton("127.0.0.1"), sys.byteorder), "08X")
    accepted = {f"00000000:{port:04X}", f"{loopback}:{port:04X}", f"{'0' * 32}:{port:04X}"}
    for table in ("tcp", "tcp6"):
        with suppress(FileNotFoundError, ProcessLookupError):
            for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
                fields = line.split()
                if len(fields) > 3 and fields[3] == "0A" and fields[1] in accepted:
                    return True
    return False
