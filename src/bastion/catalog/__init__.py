"""Image definitions: the YAML files users write, validated into frozen models.

A definition file (YAML keys in kebab-case; ``docs/definition-schema.json`` is the full schema)::

    name: python                      # required; also the default image name, bastion/<name>
    tags: ["3.11"]                    # default [latest]
    platforms: [linux/amd64, linux/arm64]
    contents:
      repositories:                   # absent: the host's apt sources
        - {uri: http://mirror.example/debian, suites: [bookworm], components: [main]}
      packages: [python3.11, "!mawk"] # "!name" excludes a package
    accounts: {run-as: "65532"}
    entrypoint: [/usr/bin/python3.11]
    paths: [{type: directory, path: /app, mode: "0755", uid: 65532, gid: 65532}]
    tests:                            # file, absent, command or http; platforms: only for these
      - {name: no-shell, absent: /bin/sh}
      - {name: libc, file: /usr/lib/x86_64-linux-gnu/libc.so.6, platforms: [linux/amd64]}
    compliance:                       # profiles the build checks; failures accepted with a reason
      profiles: [default]
      waivers: [{rule: image_healthcheck, reason: "no service to probe"}]
    vex:                              # what the maintainers state about a vulnerability
      - {vulnerability: CVE-2023-4039, status: not_affected, author: "Platform team <sec@example.com>",
         justification: vulnerable_code_not_in_execute_path, packages: ["pkg:deb/debian/libgcc-s1"]}
    variants:
      runtime: {}
      dev:
        contents: {packages: [bash, "!mawk"]}
        accounts: {run-as: root}
        tests: ["!no-shell"]

:func:`load_definition` reads a file and raises :class:`~bastion.errors.DefinitionError` whose
``where`` is ``file:line`` and whose message starts with the field path (``contents.packages[2]: ...``);
a YAML syntax error gives ``file:line:col``. A key given twice in a mapping is an error.

Variants
--------
``builds`` (upstream build pipelines) and ``artifacts`` (files from other images by digest) are
top-level only: their outputs go into every variant (:mod:`bastion.catalog._builds`).

``variants`` maps a variant name (``runtime``, ``dev`` or any ``[a-z0-9-]+``) to an overlay: the
top-level fields except ``name`` and ``variants``, all optional, plus ``kind`` (``runtime`` or ``dev``:
what the builder enforces; it defaults to the variant's name if that is ``runtime`` or ``dev``, else
``runtime``). Without ``variants`` a definition has one variant, ``runtime``, with an empty overlay.

Every variant is the top level with its own overlay merged in; the top level describes the runtime
image, so with ``runtime: {}`` the ``dev`` variant is exactly the runtime one plus the dev overlay.
Overlays do not stack on one another. The merge rules:

* Scalars and argument lists replace: ``image``, ``platforms``, ``entrypoint``, ``cmd``,
  ``work-dir``, ``ports``, ``stop-signal``, ``source-date-epoch``, ``kind``, ``compliance.profiles``,
  ``contents.repositories``, ``contents.keyring``, ``contents.allow-expired``, ``accounts.run-as``.
  A field the overlay leaves out keeps the top level's value; one it sets to null is set to null.
* ``tags`` replace too; when the overlay leaves them out, a variant other than ``runtime`` gets the
  top level's tags suffixed with ``-<variant>`` (``3.11`` -> ``3.11-dev``), so variants never share a tag.
* ``contents.packages`` are appended, the last word on a name winning: ``bash`` adds bash and drops an
  inherited ``!bash``; ``!bash`` drops an inherited ``bash`` and excludes it.
* ``tests`` (keyed by name), ``paths`` (by path), ``accounts.users`` and ``accounts.groups`` (by name),
  ``compliance.waivers`` (by rule) and ``vex`` (by vulnerability) are appended; an item whose key is
  inherited replaces that item in place; ``"!key"`` removes the inherited item, and removing one that
  is not inherited is an error.
* ``environment``, ``labels`` and ``annotations`` are merged key by key; a null value removes the key.

:func:`load_package_definition` reads a package definition (:class:`PackageDefinition`: a Debian source
package Bastion rebuilds, with patches; ``docs/package-schema.json``) with the same errors.

Factory fields
--------------
``track`` (trackers and the ``${NAME}`` variables they set), ``dates`` (release, end-of-life) and
``from`` (the catalog image a definition starts from) are top-level only; see
:mod:`bastion.catalog._track` and ``docs/definitions.md``. They are left out of the digest (``from``
only when absent), so existing lock files still match.

:func:`normalised_digest` identifies what a definition means (not how it is written) for lock files;
:func:`definition_schema` is the JSON schema of the format.
"""

from bastion.catalog._builds import Artifact, ArtifactFile, BuildOutput, BuildSource, BuildStep, DebianOrig
from bastion.catalog._loader import load_definition, load_package_definition
from bastion.catalog._model import Definition, ImageFields, Overlay, Variant, VariantKind
from bastion.catalog._package import PackageDefinition, Patch
from bastion.catalog._parts import (
    AbsentTest,
    Accounts,
    AccountsOverlay,
    CommandTest,
    Compliance,
    ComplianceOverlay,
    Contents,
    ContentsOverlay,
    DirectoryEntry,
    FileEntry,
    FileTest,
    Group,
    HttpTest,
    Repository,
    SymlinkEntry,
    User,
    Waiver,
)
from bastion.catalog._schema import (
    definition_schema,
    normalised_digest,
    package_schema,
    render_package_schema,
    render_schema,
)
from bastion.catalog._track import (
    TEMPLATED_FIELDS,
    Dates,
    DebianPackageTracker,
    GithubReleaseTracker,
    GithubTagTracker,
    IncrementTracker,
    JsonUrlTracker,
    OciImageTracker,
    ReviewAction,
    ReviewPolicy,
    Tracker,
    TrackerKind,
    UpstreamReview,
    UrlTracker,
    VarSpec,
    capture,
    parse_from,
    review_ref,
)
from bastion.catalog._vex import VexJustification, VexStatement, VexStatus

__all__ = [
    "TEMPLATED_FIELDS",
    "AbsentTest",
    "Accounts",
    "AccountsOverlay",
    "Artifact",
    "ArtifactFile",
    "BuildOutput",
    "BuildSource",
    "BuildStep",
    "CommandTest",
    "Compliance",
    "ComplianceOverlay",
    "Contents",
    "ContentsOverlay",
    "Dates",
    "DebianOrig",
    "DebianPackageTracker",
    "Definition",
    "DirectoryEntry",
    "FileEntry",
    "FileTest",
    "GithubReleaseTracker",
    "GithubTagTracker",
    "Group",
    "HttpTest",
    "ImageFields",
    "IncrementTracker",
    "JsonUrlTracker",
    "OciImageTracker",
    "Overlay",
    "PackageDefinition",
    "Patch",
    "Repository",
    "ReviewAction",
    "ReviewPolicy",
    "SymlinkEntry",
    "Tracker",
    "TrackerKind",
    "UpstreamReview",
    "UrlTracker",
    "User",
    "VarSpec",
    "Variant",
    "VariantKind",
    "VexJustification",
    "VexStatement",
    "VexStatus",
    "Waiver",
    "capture",
    "definition_schema",
    "load_definition",
    "load_package_definition",
    "normalised_digest",
    "package_schema",
    "parse_from",
    "render_package_schema",
    "render_schema",
    "review_ref",
]
