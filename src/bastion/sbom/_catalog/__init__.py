"""Catalogers: each finds one kind of package in an :class:`~bastion.image.ImageTarget`.

The interface is :class:`Cataloger` (``name`` and ``catalog(target) -> list[Package]``); one module per
ecosystem; :func:`drop_owned` applies the ownership rule (:mod:`._ownership`) across their results.
"""

from bastion.sbom._catalog._apk import ApkCataloger
from bastion.sbom._catalog._base import Cataloger, OsRelease, os_release
from bastion.sbom._catalog._dpkg import DpkgCataloger
from bastion.sbom._catalog._golang import GoBinaryCataloger
from bastion.sbom._catalog._java import JavaArchiveCataloger
from bastion.sbom._catalog._npm import NpmCataloger
from bastion.sbom._catalog._ownership import drop_owned
from bastion.sbom._catalog._python import PythonCataloger

#: Every cataloger, in the order they run (OS package databases first).
CATALOGERS: tuple[Cataloger, ...] = (
    DpkgCataloger(),
    ApkCataloger(),
    PythonCataloger(),
    NpmCataloger(),
    GoBinaryCataloger(),
    JavaArchiveCataloger(),
)

__all__ = [
    "CATALOGERS",
    "ApkCataloger",
    "Cataloger",
    "DpkgCataloger",
    "GoBinaryCataloger",
    "JavaArchiveCataloger",
    "NpmCataloger",
    "OsRelease",
    "PythonCataloger",
    "drop_owned",
    "os_release",
]
