"""Building from source: Debian source packages rebuilt (patched, ``+bastion<N>``) in the sandbox from
verified inputs, and Bastion's own signed APT repository that publishes them; upstream build pipelines
(a definition's ``builds:``, compiled in the sandbox from verified tarballs) and ``artifacts:``."""

from bastion.source._build import BuiltFile, SourceBuild, build_source, local_repository
from bastion.source._buildroot import BuildRoot, build_dependencies, prepare_build_root, prepare_package_root
from bastion.source._changelog import (
    MAINTAINER,
    ChangelogFacts,
    bastion_version,
    changelog_entry,
    parse_facts,
)
from bastion.source._proofs import BuildFacts, make_proofs, provenance_references, source_signer
from bastion.source._repository import SUITE, LocalRepository, Published
from bastion.source._upstream import Upstream, UpstreamComponent, UpstreamFile, UpstreamInput, build_upstream

__all__ = [
    "MAINTAINER",
    "SUITE",
    "BuildFacts",
    "BuildRoot",
    "BuiltFile",
    "ChangelogFacts",
    "LocalRepository",
    "Published",
    "SourceBuild",
    "Upstream",
    "UpstreamComponent",
    "UpstreamFile",
    "UpstreamInput",
    "bastion_version",
    "build_dependencies",
    "build_source",
    "build_upstream",
    "changelog_entry",
    "local_repository",
    "make_proofs",
    "parse_facts",
    "prepare_build_root",
    "prepare_package_root",
    "provenance_references",
    "source_signer",
]
