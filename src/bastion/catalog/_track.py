"""What the factory watches for a definition: ``track:`` (trackers and the variables they set),
``dates:`` (release and end of life) and ``from:`` (the catalog image a definition starts from).

A tracker reports one string (a version, a tag, a digest). Each of its ``vars`` takes that string
whole, or the first group of its ``capture`` regex (the whole match when the regex has no group),
and holds a ``value``: the value the definition is built with now. The factory proposes a change by
writing a new ``value``; :func:`bastion.catalog.load_definition` substitutes the values into the
templated fields (:data:`TEMPLATED_FIELDS`) before they are validated, so a definition with trackers
is an ordinary definition to ``lock`` and ``build``.
"""

from __future__ import annotations

import datetime
import re
from typing import Annotated, Literal, Self

from pydantic import AfterValidator, Discriminator, Field, Tag, model_validator

from bastion.catalog._parts import Model
from bastion.catalog._types import DefinitionName, EnvName, Matches, NonEmpty, VariantName, unique

__all__ = [
    "TEMPLATED_FIELDS",
    "TRACKER_TAGS",
    "Dates",
    "DebianPackageTracker",
    "FromImage",
    "GithubReleaseTracker",
    "GithubTagTracker",
    "IncrementTracker",
    "JsonUrlTracker",
    "OciImageTracker",
    "ReviewAction",
    "ReviewPolicy",
    "Tracker",
    "TrackerKind",
    "Trackers",
    "UpstreamReview",
    "UrlTracker",
    "VarSpec",
    "capture",
    "parse_from",
    "review_ref",
]

#: The fields ``${NAME}`` is substituted in, as field paths (``*`` is any key or index), at the top
#: level and in every variant's overlay. Everywhere else ``${`` is text as written (an image test's
#: command may well contain ``${Package}`` for dpkg-query).
TEMPLATED_FIELDS: tuple[tuple[str, ...], ...] = (
    ("contents", "packages", "*"),  # version pins: python3.11=${VERSION}
    ("contents", "repositories", "*", "uri"),
    ("contents", "repositories", "*", "suites", "*"),
    ("tags", "*"),
    ("labels", "*"),
    ("annotations", "*"),
    ("from",),
)

TrackerKind = Literal[
    "debian-package", "github-release", "github-tag", "oci-image", "url", "json-url", "increment"
]

VarName = Annotated[str, Matches(r"^[A-Z][A-Z0-9_]*$", "variable name", "VERSION", 64)]
# The value a variable has now; it is substituted into fields that have their own checks.
VarValue = Annotated[str, Field(min_length=1, max_length=256, pattern=r"^[\x21-\x7e]+$")]


def _regex(value: str) -> str:
    try:
        re.compile(value)
    except re.error as err:
        raise ValueError(f"not a valid regular expression: {err}") from None
    return value


Regex = Annotated[str, Field(min_length=1, max_length=512), AfterValidator(_regex)]
HttpUrl = Annotated[
    str, Matches(r"^https?://[^\s/]+(?:/[^\s]*)?$", "http(s) URL", "https://example.org/VERSION", 2048)
]
GithubName = Annotated[str, Matches(r"^[A-Za-z0-9_.-]+$", "GitHub owner or repository", "python", 100)]
PackageName = Annotated[str, Matches(r"^[a-z0-9][a-z0-9+.-]+$", "Debian package name", "python3.11", 128)]
# A path into a JSON document: keys and [index] steps, e.g. ``releases[0].version`` (no wildcards).
JsonPath = Annotated[
    str,
    Matches(
        r"^[A-Za-z0-9_-]+(?:\[[0-9]+\])*(?:\.[A-Za-z0-9_-]+(?:\[[0-9]+\])*)*$",
        "JSON path (keys and [index] steps)",
        "releases[0].version",
        512,
    ),
]


class VarSpec(Model):
    """A variable a tracker sets."""

    value: VarValue
    """The value the definition is built with now (the factory proposes a new one)."""
    capture: Regex | None = None
    """A regex searched in the tracker's result: its first group (or the whole match) is the value."""


def capture(spec: VarSpec, result: str) -> str | None:
    """The value ``spec`` takes from a tracker ``result``; ``None`` when its regex does not match."""
    if spec.capture is None:
        return result
    found = re.search(spec.capture, result)
    if found is None:
        return None
    return found.group(1) if found.re.groups else found.group(0)


Vars = Annotated[dict[VarName, VarSpec], NonEmpty()]


class _Tracker(Model):
    vars: Vars
    """Variables set from what the tracker reports."""


#: What the factory does with a proposal whose upstream review has a verdict: let it through
#: (``merge``), let it wait in the review queue for ``bastion review approve`` (``wait``), or close it
#: at once as rejected by the policy (``block``).
ReviewAction = Literal["merge", "wait", "block"]

_TEMPLATE_NAME = re.compile(r"\$\{([A-Z][A-Z0-9_]*)\}")
# A git ref template: printable, no spaces; ${NAME} takes a variable of the tracker.
RefTemplate = Annotated[str, Field(min_length=1, max_length=256, pattern=r"^[\x21-\x7e]+$")]
# A local clone or bare mirror: a path, relative to the definition's directory unless absolute.
RepoPath = Annotated[str, Field(min_length=1, max_length=4096, pattern=r"^[^\x00-\x1f\x7f]+$")]


class ReviewPolicy(Model):
    """Issue 22 item 5: what each guardrail verdict does (default: pass merges, review and block wait)."""

    pass_: ReviewAction = Field("merge", alias="pass")
    review: ReviewAction = "wait"
    block: ReviewAction = "wait"

    def action(self, verdict: str) -> ReviewAction:
        return self.pass_ if verdict == "pass" else self.review if verdict == "review" else self.block


class UpstreamReview(Model):
    """Where the upstream source of a tracked project is, for the factory's review gate: the
    guardrail (``bastion review diff``) runs between the ref of the value the definition is built
    with and the ref of the proposed one (docs/definitions.md, "The review gate")."""

    repo: RepoPath
    """A local git clone or bare mirror holding both refs (kept current by whoever runs the factory)."""
    ref: RefTemplate | None = None
    """The git ref of a version, with ``${NAME}`` for the tracker's variables (``v${VERSION}``);
    default: the value of the tracker's one variable."""
    policy: ReviewPolicy = Field(default_factory=lambda: ReviewPolicy.model_validate({}))


def review_ref(tracker: _Tracker, review: UpstreamReview, values: dict[str, str]) -> str:
    """The git ref ``review`` names for the tracker's variables set to ``values``."""
    template = review.ref if review.ref is not None else "${" + next(iter(tracker.vars)) + "}"
    return _TEMPLATE_NAME.sub(lambda m: values[m.group(1)], template)


class _Reviewed(_Tracker):
    review: UpstreamReview | None = None
    """The upstream source the factory's review gate compares versions in (absent: no review)."""

    @model_validator(mode="after")
    def _review_ref(self) -> Self:
        if self.review is None:
            return self
        if self.review.ref is None:
            if len(self.vars) != 1:
                raise ValueError("review.ref is needed when the tracker sets more than one variable")
            return self
        unknown = sorted(set(_TEMPLATE_NAME.findall(self.review.ref)) - set(self.vars))
        if unknown:
            raise ValueError(f"review.ref names {', '.join(unknown)}, which this tracker does not set")
        return self


class DebianPackageTracker(_Tracker):
    """The candidate version of a package in the definition's verified repositories."""

    kind: Literal["debian-package"]
    package: PackageName
    architecture: Annotated[str, Matches(r"^[a-z0-9-]+$", "Debian architecture", "amd64", 32)] | None = None
    """Default: the architecture of the definition's first platform."""


class _Github(_Reviewed):
    owner: GithubName
    repo: GithubName
    match: Regex | None = None
    """Only releases or tags whose name this regex matches (searched); the newest of them is reported."""
    token_env: EnvName | None = None
    """An environment variable holding a token for the API (never the token itself)."""


class GithubReleaseTracker(_Github):
    """The newest non-draft, non-prerelease release of a GitHub repository (its tag name)."""

    kind: Literal["github-release"]


class GithubTagTracker(_Github):
    """The first tag of a GitHub repository (the API lists the newest first) whose name matches."""

    kind: Literal["github-tag"]


class OciImageTracker(_Tracker):
    """The digest a tag of a registry image points to (a base or build image moved)."""

    kind: Literal["oci-image"]
    image: Annotated[str, Matches(r"^[^\s@]+:[A-Za-z0-9_][A-Za-z0-9._-]*$", "image reference with a tag", "registry.example/library/debian:12", 512)]  # fmt: skip


class UrlTracker(_Reviewed):
    """A version file at a URL (its text, stripped; or what ``match`` finds in it)."""

    kind: Literal["url"]
    url: HttpUrl
    match: Regex | None = None


class JsonUrlTracker(_Tracker):
    """A string or number inside a JSON document at a URL."""

    kind: Literal["json-url"]
    url: HttpUrl
    path: JsonPath


class IncrementTracker(_Tracker):
    """A release counter (``1``, ``2`` ...): it bumps when a variable of ``on`` changes and goes back
    to 1 when ``reset-on`` (the upstream version) changes."""

    kind: Literal["increment"]
    on: Annotated[tuple[VarName, ...], unique(str, "variable")] = ()
    reset_on: VarName


def _kind(value: object) -> str:
    kind = value.get("kind") if isinstance(value, dict) else getattr(value, "kind", None)
    return f"~{kind}" if kind is not None else ""


_ONE_KIND = (
    "a tracker needs kind: debian-package, github-release, github-tag, oci-image, url, json-url or increment"
)
Tracker = Annotated[
    Annotated[DebianPackageTracker, Tag("~debian-package")]
    | Annotated[GithubReleaseTracker, Tag("~github-release")]
    | Annotated[GithubTagTracker, Tag("~github-tag")]
    | Annotated[OciImageTracker, Tag("~oci-image")]
    | Annotated[UrlTracker, Tag("~url")]
    | Annotated[JsonUrlTracker, Tag("~json-url")]
    | Annotated[IncrementTracker, Tag("~increment")],
    Discriminator(_kind, custom_error_type="tracker_kind", custom_error_message=_ONE_KIND),
]
#: The tags of the tracker union, which pydantic puts in error locations.
TRACKER_TAGS = frozenset(
    f"~{kind}"
    for kind in (
        "debian-package",
        "github-release",
        "github-tag",
        "oci-image",
        "url",
        "json-url",
        "increment",
    )
)


def _check_trackers(trackers: tuple[Tracker, ...]) -> tuple[Tracker, ...]:
    seen: dict[str, int] = {}
    for index, tracker in enumerate(trackers):
        for name in tracker.vars:
            if name in seen:
                raise ValueError(f"variable {name} is set by trackers {seen[name]} and {index}")
            seen[name] = index
    reviewed = [i for i, t in enumerate(trackers) if getattr(t, "review", None) is not None]
    if len(reviewed) > 1:
        # One upstream review per proposal: the image carries one review attestation.
        raise ValueError(f"trackers {', '.join(map(str, reviewed))} both have review: one tracker may")
    for tracker in trackers:
        if isinstance(tracker, IncrementTracker):
            for name in (*tracker.on, tracker.reset_on):
                if name not in seen:
                    raise ValueError(f"increment tracker refers to {name}, which no tracker sets")
    return trackers


Trackers = Annotated[tuple[Tracker, ...], AfterValidator(_check_trackers)]


class Dates(Model):
    """The image's life: an image past its end of life is not rebuilt by the factory."""

    release: datetime.date | None = None
    end_of_life: datetime.date | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.release and self.end_of_life and self.end_of_life < self.release:
            raise ValueError("end-of-life is before release")
        return self


#: ``from:``: a catalog definition's name, optionally ``:variant`` (default ``runtime``).
FromImage = Annotated[
    str,
    Matches(
        r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?::[a-z0-9][a-z0-9-]*)?$",
        "catalog image (definition name, optionally :variant)",
        "python:runtime",
        200,
    ),
]


def parse_from(value: str) -> tuple[DefinitionName, VariantName]:
    """``python:dev`` -> (``python``, ``dev``); ``python`` -> (``python``, ``runtime``)."""
    name, _, variant = value.partition(":")
    return name, variant or "runtime"
