"""Running untrusted build steps: one command in a ``bwrap`` sandbox, as an unprivileged host identity.

What a build runs (``dpkg-source`` on a ``.dsc`` from outside, a package's ``debian/rules``, the
commands of an upstream pipeline) is untrusted code, so it gets what the image tests get (see
``bastion.pipeline._imagetest``) and nothing more:

* every namespace unshared: no network but loopback, a fresh ``/proc``, ``/dev`` and ``/tmp``;
* only the mounts the caller names: a root tree (read-only unless the step is meant to change it) and
  the work directories; nothing else of the host, so neither ``BASTION_HOME`` nor its keys;
* as root, the process becomes the unprivileged host id ``HOST_ID_BASE`` (``setpriv``, no capability
  left in the host's namespace) before ``bwrap`` starts, and the sandbox's user namespace maps its ids
  0-65535 onto the block (:func:`map_ids`), so ``root`` in the sandbox may chown within it and nothing
  more; Docker's default capabilities inside that namespace, never CAP_SYS_ADMIN;
* bounded: a process count (``prlimit --nproc``), a wall-clock timeout after which the whole pid
  namespace is killed, and the output kept (at most :data:`LOG_LIMIT` bytes in the log file).

Each mount's host path is first bound by Bastion (as root, in a private mount namespace) under a fresh
directory in ``/tmp`` that the unprivileged id can reach, whatever the modes of the directories above it,
and read-only mounts are made read-only there, where the sandbox cannot undo it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

from bastion.errors import EnvironmentProblem
from bastion.sandbox._hostids import host_owner, map_ids

__all__ = ["LOG_LIMIT", "PROCESS_LIMIT", "ROOT_CAPS", "Mount", "Outcome", "Step", "run_step"]

#: The most bytes of a step's output kept in its log file; the rest is counted, not kept.
LOG_LIMIT = 64 << 20
#: Processes and threads one sandboxed step may have at once (RLIMIT_NPROC of its host id).
PROCESS_LIMIT = 4096
#: Docker's default capability set (moby's oci/caps/defaults.go), each confined to the sandbox's own user
#: namespace whose ids are all unprivileged host ids; never CAP_SYS_ADMIN, CAP_SYS_PTRACE, CAP_NET_ADMIN.
ROOT_CAPS = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
    "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL",
    "CAP_AUDIT_WRITE",
)  # fmt: skip
_BWRAP = ("bwrap", "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL")
_TMP_BYTES = 4 << 30
_TAIL_LINES = 40
_SPAWN = 10.0
# As root, in a private mount namespace: bind each host path ($1 = count, then pairs of source and
# "ro"/"rw") to staging/<i>, read-only where asked, then exec the rest.
_STAGE = (
    'staging=$1; n=$2; shift 2; i=0; while [ "$i" -lt "$n" ]; do '
    'mount --rbind -- "$1" "$staging/$i" || exit 125; '
    'if [ "$2" = ro ]; then mount -o remount,bind,ro -- "$staging/$i" || exit 125; fi; '
    'shift 2; i=$((i + 1)); done; exec "$@"'
)


@dataclass(frozen=True)
class Mount:
    """A host directory (or file) at ``target`` in the sandbox; ``/`` is the root tree."""

    source: Path
    target: str
    writable: bool = False


@dataclass(frozen=True)
class Step:
    """One command to run in the sandbox."""

    name: str  # what the step is called in messages ("unpack", "build")
    command: Sequence[str]
    mounts: Sequence[Mount]  # the first is normally "/"
    env: Mapping[str, str] = field(default_factory=dict)
    workdir: str = "/"
    timeout: float = 3600.0
    log: Path | None = None  # where the step's output (stdout and stderr interleaved) is kept


@dataclass(frozen=True)
class Outcome:
    exit_code: int | None  # None: killed at the timeout, or the sandbox did not start
    timed_out: bool
    tail: str  # the last lines of the output, for a one-line error
    seconds: float

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out


def _require_tools() -> None:
    tools = ("bwrap", "unshare", "setpriv", "mount", "prlimit")
    if missing := [tool for tool in tools if shutil.which(tool) is None]:
        raise EnvironmentProblem(
            f"{', '.join(missing)} not found: builds run in a bubblewrap sandbox",
            hint="apt-get install bubblewrap util-linux mount",
        )
    if os.geteuid() != 0:
        # Without root, the sandbox could map one id only, and dpkg in a build root needs 0-65535.
        raise EnvironmentProblem("source builds need root to map the sandbox's 65,536 ids onto unprivileged ones",
                            hint="run as root, as CI does; the build itself never runs as the host's root")  # fmt: skip


def run_step(step: Step, on_line: Callable[[str], None] | None = None) -> Outcome:
    """Run ``step`` in the sandbox and wait for it (at most ``step.timeout`` seconds)."""
    _require_tools()
    started = time.monotonic()
    staging = Path(tempfile.mkdtemp(prefix="bastion-sandbox-", dir="/tmp"))
    try:
        staging.chmod(0o755)
        for i, _ in enumerate(step.mounts):
            (staging / str(i)).mkdir()
        return _run(step, staging, started, on_line)
    finally:
        for i, _ in enumerate(step.mounts):
            with suppress(OSError):
                (staging / str(i)).rmdir()
        with suppress(OSError):
            staging.rmdir()


def _argv(step: Step, staging: Path, fds: tuple[int, int, int]) -> list[str]:
    status, info, block = fds
    argv = [*_BWRAP, "--json-status-fd", str(status), "--unshare-user", "--info-fd", str(info),
            "--userns-block-fd", str(block)]  # fmt: skip
    argv += [part for cap in ROOT_CAPS for part in ("--cap-add", cap)]
    fresh = ["--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--size", str(_TMP_BYTES), "--tmpfs", "/tmp"]  # noqa: S108  # fmt: skip
    if not any(mount.target == "/" for mount in step.mounts):
        # No root tree: bwrap's empty root, the merged-/usr links (Debian since bookworm), the fresh mounts.
        for name in ("bin", "sbin", "lib", "lib64"):
            argv += ["--symlink", f"usr/{name}", f"/{name}"]
        argv += fresh
    for i, mount in enumerate(step.mounts):
        argv += ["--bind", str(staging / str(i)), mount.target]
        if mount.target == "/":
            argv += fresh
    argv += ["--uid", "0", "--gid", "0", "--chdir", step.workdir, "--clearenv"]
    for key, value in step.env.items():
        argv += ["--setenv", key, value]
    argv += ["--", *step.command]
    host_uid, host_gid = host_owner(0, 0)
    become = ["prlimit", f"--nproc={PROCESS_LIMIT}", "--", "setpriv", f"--reuid={host_uid}", f"--regid={host_gid}",
              "--clear-groups", "--inh-caps=-all", "--bounding-set=-all", "--"]  # fmt: skip
    pairs = [part for m in step.mounts for part in (str(m.source), "rw" if m.writable else "ro")]
    unshare = ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", _STAGE, "sh"]
    return [*unshare, str(staging), str(len(step.mounts)), *pairs, *become, *argv]


def _run(step: Step, staging: Path, started: float, on_line: Callable[[str], None] | None) -> Outcome:
    status_read, status_write = os.pipe()
    info_read, info_write = os.pipe()
    block_read, block_write = os.pipe()
    out_read, out_write = os.pipe()
    passed = (status_write, info_write, block_read)
    try:
        process = subprocess.Popen(
            _argv(step, staging, passed), stdin=subprocess.DEVNULL, stdout=out_write, stderr=out_write,
            pass_fds=passed, start_new_session=True,
        )  # fmt: skip
    finally:
        for fd in (*passed, out_write):
            os.close(fd)
    tail: deque[str] = deque(maxlen=_TAIL_LINES)
    reader = threading.Thread(target=_drain, args=(out_read, step.log, tail, on_line), daemon=True)
    reader.start()
    timed_out = False
    try:
        map_ids(info_read, block_write, time.monotonic() + _SPAWN)
        try:
            process.wait(timeout=max(0.0, step.timeout - (time.monotonic() - started)))
        except subprocess.TimeoutExpired:
            timed_out = True
    finally:
        if process.poll() is None:
            # bwrap is the session leader's exec; killing it ends its pid namespace (--die-with-parent).
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        reader.join(timeout=_SPAWN)
        with os.fdopen(status_read, "rb") as status:
            text = status.read(1 << 16).decode("utf-8", "replace")
    exit_code = _exit_code(text)
    return Outcome(None if timed_out else exit_code, timed_out, "\n".join(tail), time.monotonic() - started)


def _exit_code(status: str) -> int | None:
    """The ``exit-code`` bwrap reports on its ``--json-status-fd`` (None: the command never ran)."""
    import json

    code: int | None = None
    for line in status.splitlines():
        with suppress(ValueError):
            found = json.loads(line)
            if isinstance(found, dict) and isinstance(found.get("exit-code"), int):
                code = found["exit-code"]
    return code


def _drain(fd: int, log: Path | None, tail: deque[str], on_line: Callable[[str], None] | None) -> None:
    kept = 0
    pending = b""
    with os.fdopen(fd, "rb", buffering=0) as stream, (log or Path(os.devnull)).open("wb") as out:
        while chunk := stream.read(1 << 16):
            if kept < LOG_LIMIT:
                out.write(chunk[: LOG_LIMIT - kept])
                kept += len(chunk)
            pending += chunk
            *lines, pending = pending.split(b"\n")
            pending = pending[-4096:]
            for line in lines:
                text = line[-400:].decode("utf-8", "replace")
                tail.append(text)
                if on_line is not None:
                    on_line(text)
        if pending:
            tail.append(pending.decode("utf-8", "replace"))
