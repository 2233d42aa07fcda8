"""The rebuild factory: trackers, their state, the catalog's dependency graph, and the plan.

The foundation ``factory run`` (jobs, proposals, publishing, cascades, the CVE clock) builds on:

* :func:`open_state` -> :class:`FactoryState`: the database (SQLite under ``BASTION_HOME`` or
  PostgreSQL via ``BASTION_FACTORY_DB``), migrated on open; :meth:`FactoryState.record` stores polls.
* :func:`poll`: every tracker of a catalog, as :class:`Polled` (a result or a one-line
  error per tracker), Debian suites polled once each with conditional requests.
* :func:`load_catalog` and :class:`Graph`: definitions, their ``from:``/lock/``oci-image`` edges and
  the topological order (a ``from:`` cycle is refused, named).
* :func:`plan`: what the trackers report now against the stored state, and the rebuild tree.
* :func:`cycle` (detect -> propose -> review gate -> queue, cascading) and :func:`execute` (one job:
  build -> tests -> attestations -> sign -> publish -> tags, each stage recorded), :class:`Jobs`
  (the job tables), :func:`celery_app` / :func:`send` (the task engine), :class:`FactoryConfig`.
* The CVE clock: :func:`observe` opens, updates and closes an image's items from a scan;
  :func:`rescan` re-scans each image's newest publication with the current vulnerability data
  (:func:`reattest_published` is the re-attestation hook); :func:`clock_items`,
  :func:`load_sla_policy` and :func:`sla_rows` make the ``sla report``.
"""

from bastion.factory._config import AutoApprove, FactoryConfig
from bastion.factory._cveclock import (
    ClockItem,
    Observation,
    Publication,
    clock_items,
    current_publications,
    observe,
)
from bastion.factory._db import ENV_FACTORY_DB, HEAD_REVISION, current_revision, database_url, migrate, tables
from bastion.factory._debian import LockChange
from bastion.factory._engine import QUEUES, celery_app, send
from bastion.factory._graph import Catalog, Graph, load_catalog
from bastion.factory._http import Http
from bastion.factory._jobs import FINISHED, Claim, JobRow, Jobs, LeaseLost
from bastion.factory._plan import Plan, Poll, Rebuild, TrackerReport, plan, poll
from bastion.factory._rescan import Reattest, Rescanned, reattest_published, rescan
from bastion.factory._run import Cycle, QueuedJob, cycle, execute
from bastion.factory._sla import SlaPolicy, SlaRow, load_sla_policy, sla_rows
from bastion.factory._state import FactoryState, TrackerState, open_state
from bastion.factory._trackers import ENV_GITHUB_API, Polled, TrackerRef

__all__ = [
    "ENV_FACTORY_DB",
    "ENV_GITHUB_API",
    "FINISHED",
    "HEAD_REVISION",
    "QUEUES",
    "AutoApprove",
    "Catalog",
    "Claim",
    "ClockItem",
    "Cycle",
    "FactoryConfig",
    "FactoryState",
    "Graph",
    "Http",
    "JobRow",
    "Jobs",
    "LeaseLost",
    "LockChange",
    "Observation",
    "Plan",
    "Poll",
    "Polled",
    "Publication",
    "QueuedJob",
    "Reattest",
    "Rebuild",
    "Rescanned",
    "SlaPolicy",
    "SlaRow",
    "TrackerRef",
    "TrackerReport",
    "TrackerState",
    "celery_app",
    "clock_items",
    "current_publications",
    "current_revision",
    "cycle",
    "database_url",
    "execute",
    "load_catalog",
    "load_sla_policy",
    "migrate",
    "observe",
    "open_state",
    "plan",
    "poll",
    "reattest_published",
    "rescan",
    "send",
    "sla_rows",
    "tables",
]
