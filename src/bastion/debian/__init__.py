"""Debian repositories: verified indices, versions and relations, resolution, and .deb files."""

from bastion.debian._arch import debian_arch, debian_platform, platform_spellings
from bastion.debian._deb import DebArchive, DebEntry, read_control
from bastion.debian._index import PackageIndex, PackageRecord
from bastion.debian._release import Release, verify_inrelease
from bastion.debian._repository import Suite, load_index, open_suites
from bastion.debian._resolver import DEFAULT_PRUNE, Dropped, Reason, Resolution, parse_request, resolve
from bastion.debian._sources import (
    DEFAULT_KEYRING,
    Source,
    host_sources,
    parse_deb822_sources,
    parse_one_line_sources,
)
from bastion.debian._version import Relation, compare_versions, parse_relations, version_satisfies

__all__ = [
    "DEFAULT_KEYRING",
    "DEFAULT_PRUNE",
    "DebArchive",
    "DebEntry",
    "Dropped",
    "PackageIndex",
    "PackageRecord",
    "Reason",
    "Relation",
    "Release",
    "Resolution",
    "Source",
    "Suite",
    "compare_versions",
    "debian_arch",
    "debian_platform",
    "host_sources",
    "load_index",
    "open_suites",
    "parse_deb822_sources",
    "parse_one_line_sources",
    "parse_relations",
    "parse_request",
    "platform_spellings",
    "read_control",
    "resolve",
    "verify_inrelease",
    "version_satisfies",
]
