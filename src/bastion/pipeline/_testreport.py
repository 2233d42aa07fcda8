"""The test-report proof producer (:class:`bastion.attest.ProofProducer`), next to the image tests it
reports on (:mod:`bastion.pipeline._imagetest`): each test's name, kind, result, detail and duration,
and the facts of the sandbox the command and HTTP tests ran in (``docs/attestations.md``).

Only a build that ran tests has a report (:data:`TEST_REPORT`, supplied by the build from the tests it
ran, or kept by the recipe-cache record of the build that ran the same tests on a reused image): a
build with ``--skip-tests`` attaches none, and ``attest refresh`` never makes one. A build fails when a
test fails, so an attached report's tests all passed; it is still written per test, as run. The
report names the tests it is about by digest (:data:`bastion.identifiers.ANNOTATION_TESTS`), so a
report of other tests does not count as attached.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bastion.attest import TEST_REPORT_PREDICATE_TYPE, Fact, ProofContext, ProofProducer
from bastion.identifiers import ANNOTATION_TESTS
from bastion.pipeline._cache import tests_digest
from bastion.pipeline._hostids import HOST_ID_COUNT, host_owner
from bastion.pipeline._imagetest import _SHM_BYTES, _TMP_BYTES, OUTPUT_LIMIT, ImageCheck, TestOutcome
from bastion.sandbox import PROCESS_LIMIT, ROOT_CAPS

__all__ = ["TEST_REPORT", "TEST_REPORT_PRODUCER", "report_of"]

#: The test-report predicate of the tests a build ran on the image (:func:`report_of`).
TEST_REPORT: Fact[dict[str, Any]] = Fact("test report")

_SANDBOXED = ("command", "http")


def report_of(
    tests: Sequence[ImageCheck], outcomes: Sequence[TestOutcome], *, platform: str
) -> dict[str, Any]:
    """The test-report predicate of ``outcomes``, the results of running ``tests`` on ``platform``."""
    passed = sum(1 for o in outcomes if o.passed)
    return {
        "testsDigest": f"sha256:{tests_digest(tests)}",
        "platform": platform,
        "summary": {"total": len(outcomes), "passed": passed, "failed": len(outcomes) - passed},
        "tests": [
            {
                "name": o.name,
                "kind": o.kind,
                "result": "passed" if o.passed else "failed",
                "detail": o.detail,
                "durationSeconds": o.seconds,
            }
            for o in outcomes
        ],
        # File and absent tests read the tree on disk (links resolved inside it); no sandbox is started
        # unless a command or HTTP test runs.
        "sandbox": _sandbox_facts() if any(o.kind in _SANDBOXED for o in outcomes) else None,
    }


def _sandbox_facts() -> dict[str, Any]:
    """How the command and HTTP tests were confined (``bastion.pipeline._imagetest``'s module docs)."""
    as_root = os.geteuid() == 0
    return {
        "runner": _bwrap_version(),
        "namespaces": "all unshared",
        "network": "loopback only",
        "asRoot": as_root,
        # As root: image id n is host id hostIdBase + n; otherwise the image's user is the building user.
        "hostIdBase": host_owner(0, 0)[0] if as_root else None,
        "hostIdCount": HOST_ID_COUNT if as_root else 1,
        "rootCapabilities": list(ROOT_CAPS) if as_root else [],
        "limits": {
            "processes": PROCESS_LIMIT if as_root else None,
            "outputBytes": OUTPUT_LIMIT,
            "tmpBytes": _TMP_BYTES,
            "shmBytes": _SHM_BYTES,
        },
    }


def _bwrap_version() -> str:
    """``bubblewrap X.Y.Z`` as ``bwrap --version`` says it (the tests ran with it a moment ago)."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return "bubblewrap"
    done = subprocess.run([bwrap, "--version"], capture_output=True, check=False, timeout=10)
    text = done.stdout.decode("utf-8", "replace").strip()
    return text.splitlines()[0][:100] if done.returncode == 0 and text else "bubblewrap"


@dataclass(frozen=True)
class _TestReport:
    name: str = "tests"
    predicate_type: str = TEST_REPORT_PREDICATE_TYPE
    needs: tuple[Fact[Any], ...] = ()
    separate_process: bool = False

    def inputs(self, context: ProofContext) -> Mapping[str, str] | None:
        if not context.has(TEST_REPORT):
            return None
        return {ANNOTATION_TESTS: str(context.get(TEST_REPORT).get("testsDigest", ""))}

    def produce(self, context: ProofContext) -> dict[str, Any] | None:
        return context.get(TEST_REPORT)


TEST_REPORT_PRODUCER: ProofProducer = _TestReport()
