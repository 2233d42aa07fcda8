"""The sandbox untrusted code runs in: unprivileged host ids (image tests, builds) and the build-step
runner (no network, no keys, bounded), which source builds and later upstream pipelines share."""

from bastion.sandbox._hostids import HOST_ID_BASE, HOST_ID_COUNT, give_to_sandbox, host_owner, map_ids
from bastion.sandbox._run import LOG_LIMIT, PROCESS_LIMIT, ROOT_CAPS, Mount, Outcome, Step, run_step

__all__ = [
    "HOST_ID_BASE",
    "HOST_ID_COUNT",
    "LOG_LIMIT",
    "PROCESS_LIMIT",
    "ROOT_CAPS",
    "Mount",
    "Outcome",
    "Step",
    "give_to_sandbox",
    "host_owner",
    "map_ids",
    "run_step",
]
