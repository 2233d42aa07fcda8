"""Debian repositories: verified indices, versions and relations, resolution, and .deb files."""

from bastion.debian._arch import debian_arch
from bastion.debian._deb import DebArchive, DebEntry, read_control
from bastion.debian._index import PackageIndex, PackageRecord
from bastion.debian._release import Release, verify_inrelease
from bastion.debian._repository import Suite, load_index, open_suites
from bastion.debian._resolver import DEFAULT_PRUNE, Dropped, Reason, Resolution, parse_request, resolve
from bastion.debian._sourceindex import SourceFile, SourceRecord, fetch_source, find_source, parse_dsc_files
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
    "SourceFile",
    "SourceRecord",
    "Suite",
    "compare_versions",
    "debian_arch",
    "fetch_source",
    "find_source",
    "host_sources",
    "load_index",
    "open_suites",
    "parse_deb822_sources",
    "parse_dsc_files",
    "parse_one_line_sources",
    "parse_relations",
    "parse_request",
    "read_control",
    "resolve",
    "verify_inrelease",
    "version_satisfies",
]
