"""The definition, its variant overlays, and the merge that turns the two into a :class:`Variant`.

The merge rules are documented in :mod:`bastion.catalog`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Self, TypeVar

from pydantic import (
    AfterValidator,
    Field,
    PrivateAttr,
    Strict,
    ValidationError,
    ValidationInfo,
    model_validator,
)

from bastion.catalog._builds import Artifacts, Builds
from bastion.catalog._parts import (
    DEFAULT_PROFILE_SPEC,
    UNION_TAGS,
    Accounts,
    AccountsOverlay,
    Compliance,
    ComplianceField,
    ComplianceOverlay,
    ComplianceOverlayField,
    Contents,
    ContentsOverlay,
    ImageTest,
    Model,
    PathEntry,
    PathItem,
    TestItem,
    item_key,
)
from bastion.catalog._track import Dates, FromImage, Trackers
from bastion.catalog._types import (
    AbsPath,
    ArgList,
    DefinitionName,
    EnvName,
    ImageName,
    NonEmpty,
    PlatformName,
    Port,
    Signal,
    TagName,
    VariantName,
    unique,
)
from bastion.catalog._vex import VexItems, VexStatements
from bastion.errors import DefinitionError, InputError

__all__ = ["Definition", "ImageFields", "Overlay", "OverlayError", "Variant", "VariantKind", "field_path"]

_T = TypeVar("_T")

LabelKey = Annotated[str, Field(min_length=1)]

# image-spec annotations.md, "Rules": the prefix org.opencontainers is reserved for the keys OCI
# specifications define ("Pre-Defined Annotation Keys"); ref.name names a tag, and is only valid on
# index.json's descriptors in an image layout, where the store writes it.
_OCI_ANNOTATIONS = frozenset(
    f"org.opencontainers.image.{key}"
    for key in (
        *("created", "authors", "url", "documentation", "source", "version", "revision"),
        *("vendor", "licenses", "title", "description", "base.digest", "base.name"),
    )
)


def _annotation_key(key: str) -> str:
    if key.startswith("org.opencontainers.") and key not in _OCI_ANNOTATIONS:
        if key == "org.opencontainers.image.ref.name":
            raise ValueError(f"{key} is the image layout's tag, which Bastion writes: use tags")
        raise ValueError(
            f"{key} is in the org.opencontainers namespace, reserved for the keys OCI defines "
            "(org.opencontainers.image.source, .revision, .licenses ...)"
        )
    return key


AnnotationKey = Annotated[str, Field(min_length=1), AfterValidator(_annotation_key)]
Epoch = Annotated[int, Strict(), Field(ge=0)]
Tags = Annotated[tuple[TagName, ...], NonEmpty(), unique(str, "tag")]
Platforms = Annotated[tuple[PlatformName, ...], NonEmpty(), unique(str, "platform")]
Ports = Annotated[tuple[Port, ...], unique(str, "port")]


class VariantKind(StrEnum):
    """What the builder enforces: runtime hardening (no shell, no package manager) or a dev image."""

    RUNTIME = "runtime"
    DEV = "dev"


class ImageFields(Model):
    """The fields a definition and each of its variants have in common."""

    tags: Tags = ("latest",)
    platforms: Platforms = ("linux/amd64",)
    """OCI platforms (``linux/arm64``; Debian spellings such as ``linux/armhf`` are accepted)."""
    contents: Contents = Contents()
    accounts: Accounts = Accounts()
    entrypoint: ArgList = ()
    cmd: ArgList = ()
    work_dir: AbsPath | None = None
    environment: dict[EnvName, str] = {}
    paths: Annotated[tuple[PathEntry, ...], unique(item_key, "path")] = ()
    """Directories, files and symlinks created in the image after the packages are unpacked."""
    labels: dict[LabelKey, str] = {}
    annotations: dict[AnnotationKey, str] = {}
    """OCI annotations of every platform's image manifest and of the image index (keys in reverse
    domain notation; ``org.opencontainers.*`` only for the keys the image spec defines)."""
    ports: Ports = ()
    stop_signal: Signal | None = None
    source_date_epoch: Epoch | None = None
    """Timestamp of every file and of the image; when absent, taken from the lock file."""
    compliance: ComplianceField = Compliance()
    """The compliance profiles the image claims to meet, and the failures it waives with a reason."""
    vex: VexStatements = ()
    """What the image's maintainers state about vulnerabilities (OpenVEX statements with an author)."""
    tests: Annotated[tuple[ImageTest, ...], unique(item_key, "test")] = ()


class Variant(ImageFields):
    """One image a definition builds: the top level with one overlay merged in.

    ``compliance.profiles`` is never ``None`` in a variant: the merge writes out the default claim.
    """

    name: VariantName
    kind: VariantKind
    image: ImageName

    @property
    def claimed_profiles(self) -> tuple[str, ...]:
        """The compliance profiles the image claims (built-in names or files, as written)."""
        return self.compliance.profiles or ()


class Overlay(Model):
    """A variant's changes to the top level; an absent field leaves the top level's value."""

    kind: VariantKind | None = None
    """Defaults to the variant's name if that is ``runtime`` or ``dev``, else ``runtime``."""
    image: ImageName | None = None
    tags: Tags | None = None
    """Defaults to the top level's tags, suffixed with ``-<variant>`` unless the variant is ``runtime``."""
    platforms: Platforms | None = None
    contents: ContentsOverlay = ContentsOverlay()
    accounts: AccountsOverlay = AccountsOverlay()
    entrypoint: ArgList | None = None
    cmd: ArgList | None = None
    work_dir: AbsPath | None = None
    environment: dict[EnvName, str | None] = {}
    """Merged key by key; a null value removes the inherited variable."""
    paths: Annotated[tuple[PathItem, ...], unique(item_key, "path")] = ()
    labels: dict[LabelKey, str | None] = {}
    annotations: dict[AnnotationKey, str | None] = {}
    """Merged key by key; a null value removes the inherited annotation."""
    ports: Ports | None = None
    stop_signal: Signal | None = None
    source_date_epoch: Epoch | None = None
    compliance: ComplianceOverlayField = ComplianceOverlay()
    """``profiles`` replaces; ``waivers`` merge by rule, ``"!rule"`` removing an inherited one."""
    vex: VexItems = ()
    """Merged by vulnerability; ``"!CVE-..."`` removes an inherited statement."""
    tests: Annotated[tuple[TestItem, ...], unique(item_key, "test")] = ()


class Definition(ImageFields):
    """An image definition as written in its YAML file (see :func:`bastion.catalog.load_definition`)."""

    name: DefinitionName
    """Name of the definition, ``[a-z0-9][a-z0-9._-]*``."""
    image: ImageName | None = None
    """Repository name in the local store; ``bastion/<name>`` when absent."""
    variants: Annotated[dict[VariantName, Overlay | None], NonEmpty()] | None = None
    """Overlays by variant name; when absent the definition has one variant, ``runtime``."""
    track: Trackers = ()
    """Upstreams the factory watches, and the variables (``${NAME}``) each sets."""
    dates: Dates = Dates()
    """Release and end of life; the factory does not rebuild an image past its end of life."""
    from_: FromImage | None = Field(default=None, alias="from")
    """The catalog image (definition name, optionally ``:variant``) this definition starts from."""
    builds: Builds = ()
    """Upstream build pipelines: verified sources compiled in the sandbox, outputs copied into every variant."""
    artifacts: Artifacts = ()
    """Files copied into every variant from other OCI images, pinned by digest."""

    # Defaults, not default_factory: pydantic inspects a factory's signature for every instance.
    _path: Path = PrivateAttr(default=Path())
    _variants: dict[str, Variant] | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _bind_path(self, info: ValidationInfo) -> Self:
        if isinstance(info.context, Mapping) and "path" in info.context:
            self._path = Path(info.context["path"])
        return self

    @property
    def path(self) -> Path:
        """The file the definition was loaded from (not part of the definition's content)."""
        return self._path

    def resolve_file(self, value: str) -> Path:
        """A path written in the definition (e.g. ``keyring``), relative paths taken from its directory."""
        return self._path.parent / value

    def variant_names(self) -> list[str]:
        """Variant names in the order the file gives them."""
        return list(self.variants) if self.variants is not None else ["runtime"]

    def variant(self, name: str) -> Variant:
        """The definition as the variant ``name`` builds it."""
        if name not in self.variant_names():
            names = ", ".join(self.variant_names())
            raise InputError(f"definition {self.name!r} has no variant {name!r} (it has: {names})")
        if self._variants is not None and name in self._variants:
            return self._variants[name]
        try:
            return merge_variant(self, name)
        except OverlayError as err:
            message = f"{field_path(('variants', name, *err.loc))}: {err.message}"
            raise DefinitionError(message, where=str(self._path)) from None
        except ValidationError as err:
            first = err.errors()[0]
            loc = [part for part in first["loc"] if part not in UNION_TAGS]
            message = f"{field_path(('variants', name, *loc))}: {first['msg']}"
            raise DefinitionError(message, where=str(self._path)) from None

    def keep_variants(self, variants: dict[str, Variant]) -> None:
        """Remember every variant, merged once by the loader (the definition never changes)."""
        self._variants = variants


# --- merge ----------------------------------------------------------------------------------------


class OverlayError(Exception):
    """An overlay that cannot apply; ``loc`` is the field path inside the overlay."""

    def __init__(self, loc: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc
        self.message = message


def field_path(loc: Sequence[str | int]) -> str:
    """``("contents", "packages", 2)`` -> ``contents.packages[2]``."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", part):  # a key such as "org.example.label"
            text += f"[{part!r}]"
        else:
            text += f".{part}" if text else part
    return text


def _merge_keyed(
    inherited: Sequence[_T], changes: Sequence[_T | str], loc: tuple[str, ...], what: str
) -> tuple[_T, ...]:
    merged = list(inherited)
    keys = [item_key(item) for item in merged]
    for index, change in enumerate(changes):
        key = item_key(change)
        position = keys.index(key) if key in keys else None
        if isinstance(change, str):
            if position is None:
                raise OverlayError((*loc, index), f"{change!r} removes nothing: no inherited {what} {key!r}")
            del merged[position], keys[position]
        elif position is None:
            merged.append(change)
            keys.append(key)
        else:
            merged[position] = change
    return tuple(merged)


def _merge_packages(inherited: Sequence[str], changes: Sequence[str]) -> tuple[str, ...]:
    merged = list(inherited)
    for spec in changes:
        name = spec.removeprefix("!").split("=", 1)[0]
        merged = [kept for kept in merged if kept.removeprefix("!").split("=", 1)[0] != name]
        merged.append(spec)
    return tuple(merged)


def _merge_map(inherited: Mapping[str, str], changes: Mapping[str, str | None]) -> dict[str, str]:
    merged = dict(inherited)
    for key, value in changes.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def _replaced(inherited: Model, overlay: Model, fields: Sequence[str]) -> dict[str, Any]:
    """The ``fields`` of ``inherited``, by alias, with those the overlay sets replacing them."""
    return {
        name.replace("_", "-"): getattr(overlay if name in overlay.model_fields_set else inherited, name)
        for name in fields
    }


def _merge_compliance(top: Compliance, overlay: ComplianceOverlay, kind: VariantKind) -> dict[str, Any]:
    """``profiles`` replaced (and defaulted by the variant's kind), ``waivers`` merged by key."""
    profiles = overlay.profiles if "profiles" in overlay.model_fields_set else top.profiles
    if profiles is None:
        profiles = (DEFAULT_PROFILE_SPEC,) if kind is VariantKind.RUNTIME else ()
    waivers = _merge_keyed(top.waivers, overlay.waivers, ("compliance", "waivers"), "waiver")
    return {"profiles": profiles, "waivers": waivers}


def merge_variant(definition: Definition, name: str) -> Variant:
    """Apply the overlay of variant ``name`` to the top level; see the module docs for the rules."""
    overlay = (definition.variants or {}).get(name) or Overlay()
    top_contents, top_accounts = definition.contents, definition.accounts
    # Plain dicts, not models, so that an error in a merged value is located in the variant.
    contents = {
        **_replaced(
            top_contents, overlay.contents, ("repositories", "keyring", "allow_expired", "bastion_repository")
        ),
        "packages": _merge_packages(top_contents.packages, overlay.contents.packages),
    }
    accounts = {
        **_replaced(top_accounts, overlay.accounts, ("run_as",)),
        "users": _merge_keyed(top_accounts.users, overlay.accounts.users, ("accounts", "users"), "user"),
        "groups": _merge_keyed(top_accounts.groups, overlay.accounts.groups, ("accounts", "groups"), "group"),
    }
    if "tags" in overlay.model_fields_set:
        tags = overlay.tags
    elif name == VariantKind.RUNTIME:
        tags = definition.tags
    else:
        tags = tuple(f"{tag}-{name}" for tag in definition.tags)
    kind = overlay.kind or (VariantKind.DEV if name == VariantKind.DEV else VariantKind.RUNTIME)
    replaced = (
        "platforms",
        "entrypoint",
        "cmd",
        "work_dir",
        "ports",
        "stop_signal",
        "source_date_epoch",
    )
    return Variant.model_validate(
        {
            "name": name,
            "kind": kind,
            "image": overlay.image or definition.image or f"bastion/{definition.name}",
            "tags": tags,
            "contents": contents,
            "accounts": accounts,
            "environment": _merge_map(definition.environment, overlay.environment),
            "labels": _merge_map(definition.labels, overlay.labels),
            "annotations": _merge_map(definition.annotations, overlay.annotations),
            "paths": _merge_keyed(definition.paths, overlay.paths, ("paths",), "path"),
            "tests": _merge_keyed(definition.tests, overlay.tests, ("tests",), "test"),
            "compliance": _merge_compliance(definition.compliance, overlay.compliance, kind),
            "vex": _merge_keyed(definition.vex, overlay.vex, ("vex",), "VEX statement"),
            **_replaced(definition, overlay, replaced),
        }
    )
