"""The parts of a definition: contents, accounts, paths and image tests, and their overlay forms."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    GetJsonSchemaHandler,
    Strict,
    StrictBool,
    Tag,
)
from pydantic_core import CoreSchema

from bastion.catalog._types import (
    AbsPath,
    GroupName,
    Id,
    Matches,
    Mode,
    NonEmpty,
    PackageSpec,
    PlatformName,
    RepositoryUri,
    RunAs,
    SuiteName,
    TestName,
    UserName,
    unique,
)
from bastion.debian import DEFAULT_KEYRING

__all__ = [
    "REMOVAL_TAG",
    "UNION_TAGS",
    "AbsentTest",
    "Accounts",
    "AccountsOverlay",
    "CommandTest",
    "Compliance",
    "ComplianceOverlay",
    "Contents",
    "ContentsOverlay",
    "DirectoryEntry",
    "FileEntry",
    "FileTest",
    "Group",
    "HttpTest",
    "ImageTest",
    "Model",
    "PathEntry",
    "PathItem",
    "ProfileSpec",
    "Removal",
    "Repository",
    "SymlinkEntry",
    "TestItem",
    "User",
    "Waiver",
    "item_key",
    "removal_tag",
]


def _kebab(name: str) -> str:
    return name.replace("_", "-")


class Model(BaseModel):
    """Base of every definition model: immutable, unknown keys refused, YAML keys in kebab-case."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        alias_generator=_kebab,
        use_attribute_docstrings=True,
        # Validators are built on first use, for the models used: building all 30-odd at import,
        # each with its nested models' schemas again, was most of a no-op rebuild's time.
        defer_build=True,
    )


# --- contents -------------------------------------------------------------------------------------


class Repository(Model):
    """One apt source: the equivalent of a deb822 ``.sources`` stanza."""

    uri: RepositoryUri
    """Base URI of the archive, e.g. ``http://mirror.example/debian``."""
    suites: Annotated[tuple[SuiteName, ...], NonEmpty(), unique(str, "suite")]
    components: Annotated[tuple[SuiteName, ...], NonEmpty(), unique(str, "component")] = ("main",)


def _package_key(spec: str) -> str:
    return spec.removeprefix("!").split("=", 1)[0]


Packages = Annotated[tuple[PackageSpec, ...], unique(_package_key, "package")]
Keyring = Annotated[str, Field(min_length=1, pattern=r"^[^\x00]+$")]


class Contents(Model):
    """What goes into the image: the packages and where they come from."""

    repositories: Annotated[tuple[Repository, ...], NonEmpty()] | None = None
    """Apt sources; when absent, the host's apt sources are used."""
    keyring: Keyring = str(DEFAULT_KEYRING)
    """OpenPGP keyring the archive's InRelease must verify against (relative: to the definition)."""
    allow_expired: StrictBool = False
    """Accept an InRelease past its Valid-Until: only for pinned snapshots."""
    bastion_repository: StrictBool = False
    """Also take packages from Bastion's own APT repository (``bastion source build`` publishes it under
    ``BASTION_HOME/repository``), verified with its published key: its ``+bastion<N>`` versions sort
    above the versions they rebuild, so they are the ones installed."""
    packages: Packages = ()
    """Packages to install with their dependencies; ``!name`` excludes a package."""

    @property
    def include(self) -> tuple[str, ...]:
        """The packages asked for, without the exclusions."""
        return tuple(spec for spec in self.packages if not spec.startswith("!"))

    @property
    def exclude(self) -> tuple[str, ...]:
        """The names of the excluded packages (without the ``!``)."""
        return tuple(spec[1:] for spec in self.packages if spec.startswith("!"))


# --- accounts -------------------------------------------------------------------------------------


class User(Model):
    name: UserName
    uid: Id
    gid: Id
    home: AbsPath | None = None
    """Home directory; ``/home/<name>`` when absent."""
    shell: AbsPath = "/usr/sbin/nologin"

    @property
    def home_directory(self) -> str:
        return self.home or f"/home/{self.name}"


class Group(Model):
    name: GroupName
    gid: Id


class Accounts(Model):
    """Accounts added to the image's passwd and group files, beyond the built-in ones."""

    users: Annotated[tuple[User, ...], unique(lambda user: user.name, "user")] = ()
    groups: Annotated[tuple[Group, ...], unique(lambda group: group.name, "group")] = ()
    run_as: RunAs = "65532"
    """The image config's ``User``: a name or uid, optionally ``:group``."""


# --- paths ----------------------------------------------------------------------------------------


class DirectoryEntry(Model):
    type: Literal["directory"]
    path: AbsPath
    mode: Mode = "0755"
    uid: Id = 0
    gid: Id = 0


class FileEntry(Model):
    type: Literal["file"]
    path: AbsPath
    mode: Mode = "0644"
    uid: Id = 0
    gid: Id = 0
    content: str
    """The file's text, written as UTF-8."""


class SymlinkEntry(Model):
    type: Literal["symlink"]
    path: AbsPath
    target: Annotated[str, Field(min_length=1, pattern=r"^[^\x00]+$")]


# --- image tests ----------------------------------------------------------------------------------

#: The platforms a test runs for (absent: every platform the variant is built for), for what differs
#: between architectures: a path with the multiarch triplet (``/usr/lib/x86_64-linux-gnu/...``), a
#: file only one architecture's package ships. A test limited to platforms the variant does not build
#: never runs.
TestPlatforms = Annotated[tuple[PlatformName, ...], NonEmpty(), unique(str, "platform")] | None


class FileTest(Model):
    """The file exists (and contains a text, and has a mode)."""

    name: TestName
    file: AbsPath
    contains: str | None = None
    mode: Mode | None = None
    platforms: TestPlatforms = None
    """Run only for these platforms (``[linux/amd64]``); absent: for every platform."""


class AbsentTest(Model):
    """Nothing exists at the path."""

    name: TestName
    absent: AbsPath
    platforms: TestPlatforms = None
    """Run only for these platforms (``[linux/amd64]``); absent: for every platform."""


class CommandTest(Model):
    """The command runs in the image and exits as expected."""

    name: TestName
    command: Annotated[tuple[str, ...], NonEmpty()]
    exit_code: Annotated[int, Strict(), Field(ge=0, le=255)] = 0
    stdout_contains: str | None = None
    stderr_contains: str | None = None
    user: RunAs | None = None
    """Run as this user instead of the image's ``run-as``."""
    timeout: Annotated[float, Field(gt=0, le=3600)] = 60.0
    """Seconds."""
    read_only: bool = False
    """Run with the image's root read-only (``docker run --read-only``); by default a test writes to a
    root of its own that is thrown away after it."""
    platforms: TestPlatforms = None
    """Run only for these platforms (``[linux/amd64]``); absent: for every platform."""


class HttpTest(Model):
    """A server started in the image answers ``GET http`` on loopback as expected (the sandbox has a
    network namespace of its own with only ``lo``)."""

    name: TestName
    http: Annotated[str, Field(pattern=r"^/[\x21-\x7e]*$")]
    """The path to GET, e.g. ``/`` or ``/index.html?x=1``."""
    start: Annotated[tuple[str, ...], NonEmpty()]
    """The server command, run in the foreground as the image's user (or ``user``)."""
    port: Annotated[int, Strict(), Field(ge=1, le=65535)]
    status: Annotated[int, Strict(), Field(ge=100, le=599)] = 200
    body_contains: str | None = None
    user: RunAs | None = None
    timeout: Annotated[float, Field(gt=0, le=3600)] = 30.0
    """Seconds, from start to answer."""
    read_only: bool = False
    """Run the server with the image's root read-only (``docker run --read-only``)."""
    platforms: TestPlatforms = None
    """Run only for these platforms (``[linux/amd64]``); absent: for every platform."""


# --- compliance -----------------------------------------------------------------------------------

#: What ``compliance.profiles`` is when a runtime variant leaves it out: the built-in default profile
#: (``bastion.compliance`` reads the name ``default`` as ``bastion-container-baseline``).
DEFAULT_PROFILE_SPEC = "default"

# A built-in profile's name, or a profile file (``.yaml``/``.yml``; relative paths are read from the
# definition's directory).
ProfileSpec = Annotated[
    str,
    Matches(
        r"^(?:[a-z0-9][a-z0-9._-]*|[^\x00]+\.ya?ml)$",
        "compliance profile (a built-in name or a .yaml file)",
        "default",
        1024,
    ),
]
# Rule names are those of bastion.compliance's catalogue (``image_healthcheck``); that a waiver names
# a rule that exists is checked when the profile is evaluated, so loading a definition does not
# load the rules.
RuleName = Annotated[str, Matches(r"^[a-z][a-z0-9_]*$", "compliance rule name", "image_healthcheck", 128)]


def _has_text(value: str) -> str:
    if not value.strip():
        raise ValueError("a waiver needs a reason: say why the rule does not hold for this image")
    return value


Reason = Annotated[
    str,
    Field(max_length=4000, json_schema_extra={"minLength": 1, "pattern": r"\S"}),
    AfterValidator(_has_text),
]


class Waiver(Model):
    """A rule failure the image accepts, with the reason. The result is recorded in the XCCDF report
    as an ``override`` (XCCDF 1.2 section 6.6.4.3): the failure stays visible, with the reason."""

    rule: RuleName
    """The rule's name, e.g. ``image_healthcheck``."""
    reason: Reason
    """Why the rule does not hold for this image; it becomes the override's remark."""
    profile: ProfileSpec | None = None
    """Waive the rule in this claimed profile only; when absent, in every profile the image claims."""

    @property
    def key(self) -> str:
        return self.rule if self.profile is None else f"{self.rule}@{self.profile}"


def _profile_list(value: Any) -> Any:
    """``compliance: [a, b]`` is short for ``compliance: {profiles: [a, b]}``; ``null`` for
    ``{profiles: null}`` (the default claim for the variant's kind)."""
    if value is None or isinstance(value, list | tuple):
        return {"profiles": value}
    return value


@dataclass(frozen=True)
class ProfileListShorthand:
    """``Annotated`` metadata: the mapping may also be given as the list of its ``profiles`` (and, in
    an overlay, as null: back to the default claim)."""

    nullable: bool = False

    def __get_pydantic_json_schema__(self, schema: CoreSchema, handler: GetJsonSchemaHandler) -> Any:
        forms = [handler(schema), {"type": "array", "items": _PROFILE_SPEC_SCHEMA}]
        return {"anyOf": [*forms, {"type": "null"}] if self.nullable else forms}


_PROFILE_SPEC_SCHEMA = {
    "type": "string",
    "pattern": r"^(?:[a-z0-9][a-z0-9._-]*|[^\x00]+\.ya?ml)$",
    "maxLength": 1024,
}


class Compliance(Model):
    """The compliance profiles the image claims, and the failures it waives.

    The build evaluates each claimed profile on the assembled image and fails unless every rule
    passes, is not applicable, or fails with a waiver; the image's ``dev.bastion.compliance`` label
    names the profiles that passed.
    """

    profiles: Annotated[tuple[ProfileSpec, ...], unique(str, "compliance profile")] | None = None
    """Built-in profile names or profile files. When absent: ``[default]`` for a runtime variant,
    none for a dev variant; ``[]`` claims nothing."""
    waivers: Annotated[tuple[Waiver, ...], unique(lambda waiver: waiver.key, "waiver")] = ()


# Tags of the tagged unions below. They appear in pydantic's error locations, which the loader
# drops, so they are spelt so that they can never be confused with a key of the format.
_REMOVAL = "~removal"
REMOVAL_TAG = _REMOVAL
_TEST_TAGS = {
    "file": "~file-test",
    "absent": "~absent-test",
    "command": "~command-test",
    "http": "~http-test",
}
_TEST_CLASSES: dict[type[Model], str] = {
    FileTest: "~file-test",
    AbsentTest: "~absent-test",
    CommandTest: "~command-test",
    HttpTest: "~http-test",
}
_PATH_TAGS = {"directory": "~directory", "file": "~file", "symlink": "~symlink"}
_PATH_CLASSES: dict[type[Model], str] = {
    DirectoryEntry: "~directory",
    FileEntry: "~file",
    SymlinkEntry: "~symlink",
}
UNION_TAGS = frozenset({_REMOVAL, "~item", *_TEST_TAGS.values(), *_PATH_TAGS.values()})


def _test_tag(value: Any) -> str | None:
    if isinstance(value, dict):
        present = [_TEST_TAGS[key] for key in _TEST_TAGS if key in value]
        return present[0] if len(present) == 1 else None
    if isinstance(value, str):
        return _REMOVAL
    return _TEST_CLASSES.get(type(value))


def _path_tag(value: Any) -> str | None:
    if isinstance(value, dict):
        kind = value.get("type")
        return _PATH_TAGS.get(kind) if isinstance(kind, str) else None
    if isinstance(value, str):
        return _REMOVAL
    return _PATH_CLASSES.get(type(value))


def removal_tag(value: Any) -> str:
    """The tag of a keyed-list item in an overlay: a ``"!key"`` removal, or an item."""
    return _REMOVAL if isinstance(value, str) else "~item"


_ONE_TEST = "a test has exactly one of 'file', 'absent', 'command' or 'http'"
_ONE_PATH = "a path has 'type: directory', 'type: file' or 'type: symlink'"
_REMOVE = ', or is "!key" to remove an inherited one'
Removal = Annotated[str, Matches(r"^!.+$", "removal of an inherited item", "!no-shell")]

ImageTest = Annotated[
    Annotated[FileTest, Tag("~file-test")]
    | Annotated[AbsentTest, Tag("~absent-test")]
    | Annotated[CommandTest, Tag("~command-test")]
    | Annotated[HttpTest, Tag("~http-test")],
    Discriminator(_test_tag, custom_error_type="test_kind", custom_error_message=_ONE_TEST),
]
TestItem = Annotated[
    Annotated[FileTest, Tag("~file-test")]
    | Annotated[AbsentTest, Tag("~absent-test")]
    | Annotated[CommandTest, Tag("~command-test")]
    | Annotated[HttpTest, Tag("~http-test")]
    | Annotated[Removal, Tag(_REMOVAL)],
    Discriminator(_test_tag, custom_error_type="test_kind", custom_error_message=_ONE_TEST + _REMOVE),
]
PathEntry = Annotated[
    Annotated[DirectoryEntry, Tag("~directory")]
    | Annotated[FileEntry, Tag("~file")]
    | Annotated[SymlinkEntry, Tag("~symlink")],
    Discriminator(_path_tag, custom_error_type="path_kind", custom_error_message=_ONE_PATH),
]
PathItem = Annotated[
    Annotated[DirectoryEntry, Tag("~directory")]
    | Annotated[FileEntry, Tag("~file")]
    | Annotated[SymlinkEntry, Tag("~symlink")]
    | Annotated[Removal, Tag(_REMOVAL)],
    Discriminator(_path_tag, custom_error_type="path_kind", custom_error_message=_ONE_PATH + _REMOVE),
]
UserItem = Annotated[
    Annotated[User, Tag("~item")] | Annotated[Removal, Tag(_REMOVAL)], Discriminator(removal_tag)
]
GroupItem = Annotated[
    Annotated[Group, Tag("~item")] | Annotated[Removal, Tag(_REMOVAL)], Discriminator(removal_tag)
]
WaiverItem = Annotated[
    Annotated[Waiver, Tag("~item")] | Annotated[Removal, Tag(_REMOVAL)], Discriminator(removal_tag)
]


def item_key(item: Any) -> str:
    """The key an item of a keyed list merges on: a test's name, a path's path, an account's name,
    or what a model's ``key`` property says (a waiver's ``rule@profile``, a VEX statement's
    vulnerability)."""
    if isinstance(item, str):
        return item.removeprefix("!")
    if isinstance(getattr(type(item), "key", None), property):  # a model that names its own key
        return str(item.key)
    key = item.path if isinstance(item, DirectoryEntry | FileEntry | SymlinkEntry) else item.name
    assert isinstance(key, str)
    return key


# --- overlay forms --------------------------------------------------------------------------------


class ContentsOverlay(Model):
    """Changes to ``contents``: packages merge (see the module docs), the rest replaces."""

    repositories: Annotated[tuple[Repository, ...], NonEmpty()] | None = None
    keyring: Keyring | None = None
    allow_expired: StrictBool | None = None
    bastion_repository: StrictBool | None = None
    packages: Packages = ()


class AccountsOverlay(Model):
    """Changes to ``accounts``: users and groups merge by name, ``run-as`` replaces."""

    users: Annotated[tuple[UserItem, ...], unique(item_key, "user")] = ()
    groups: Annotated[tuple[GroupItem, ...], unique(item_key, "group")] = ()
    run_as: RunAs | None = None


class ComplianceOverlay(Model):
    """Changes to ``compliance``: ``profiles`` replaces (null: the default for the variant's kind),
    ``waivers`` merge by rule (``rule@profile``), ``"!rule"`` removing an inherited one."""

    profiles: Annotated[tuple[ProfileSpec, ...], unique(str, "compliance profile")] | None = None
    waivers: Annotated[tuple[WaiverItem, ...], unique(item_key, "waiver")] = ()


#: The ``compliance`` field of a definition and of an overlay: the mapping, or the list shorthand.
ComplianceField = Annotated[Compliance, BeforeValidator(_profile_list), ProfileListShorthand()]
ComplianceOverlayField = Annotated[
    ComplianceOverlay, BeforeValidator(_profile_list), ProfileListShorthand(nullable=True)
]
