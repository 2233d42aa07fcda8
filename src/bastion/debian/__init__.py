"""Debian repositories: verified indices, versions and relations, resolution, and .deb files."""

from typing import TYPE_CHECKING

from bastion._lazy import lazy_attributes
from bastion.debian._keyring import DEFAULT_KEYRING
from bastion.debian._order import DebianVersionKey, debian_version_key, is_debian_version

# Loaded on first use (PEP 562, bastion._lazy): version ordering, all the vulnerability matcher and SBOM
# comparison need of this package, is stdlib only; the repository client, index parsing (python-debian),
# the resolver and the architecture table (bastion.oci) are imported when one of their names is used.
if TYPE_CHECKING:
    from bastion.debian._arch import debian_arch, debian_platform, platform_spellings
    from bastion.debian._deb import DebArchive, DebEntry, read_control
    from bastion.debian._index import PackageIndex, PackageRecord
    from bastion.debian._release import Release, verify_inrelease
    from bastion.debian._repository import Suite, load_index, open_suites
    from bastion.debian._resolver import DEFAULT_PRUNE, Dropped, Reason, Resolution, parse_request, resolve
    from bastion.debian._sourceindex import (
        SourceFile,
        SourceRecord,
        fetch_source,
        find_source,
        parse_dsc_files,
    )
    from bastion.debian._sources import (
        Source,
        host_sources,
        parse_deb822_sources,
        parse_one_line_sources,
    )
    from bastion.debian._version import Relation, compare_versions, parse_relations, version_satisfies

__getattr__ = lazy_attributes(__name__)

__all__ = [
    "DEFAULT_KEYRING",
    "DEFAULT_PRUNE",
    "DebArchive",
    "DebEntry",
    "DebianVersionKey",
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
    "debian_platform",
    "debian_version_key",
    "fetch_source",
    "find_source",
    "host_sources",
    "is_debian_version",
    "load_index",
    "open_suites",
    "parse_deb822_sources",
    "parse_dsc_files",
    "parse_one_line_sources",
    "parse_relations",
    "parse_request",
    "platform_spellings",
    "read_control",
    "resolve",
    "verify_inrelease",
    "version_satisfies",
]
