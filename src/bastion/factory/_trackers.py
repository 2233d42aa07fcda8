"""Trackers other than ``debian-package``: each a function of (spec, stored state) -> :class:`Polled`.

A tracker never raises for what upstream sends: garbage, an error status, a redirect loop, a
result that is no version all become one line in :attr:`Polled.error`, and the other trackers go on.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bastion import _clock as clock
from bastion.catalog import (
    GithubReleaseTracker,
    GithubTagTracker,
    IncrementTracker,
    JsonUrlTracker,
    OciImageTracker,
    Tracker,
    UrlTracker,
    capture,
)
from bastion.documents import load_json
from bastion.errors import BastionError
from bastion.factory._http import Answer, Http
from bastion.factory._state import TrackerState

__all__ = [
    "ENV_GITHUB_API",
    "Polled",
    "TrackerRef",
    "check_version",
    "poll_github",
    "poll_increment",
    "poll_json_url",
    "poll_oci",
    "poll_url",
    "variables",
]

#: The GitHub REST API's base URL (tests point it at a loopback server replaying recorded answers).
ENV_GITHUB_API = "BASTION_GITHUB_API"
_GITHUB_API = "https://api.github.com"
# A result becomes a variable's value: written into the definition's YAML text as a quoted scalar
# (_propose._rewrite) and substituted into pins, tags, URLs and build commands. So only what versions,
# tags and digests are made of (semver 2.0.0 §9-10, Debian Policy §5.6.12, OCI digests, `release/1.2`):
# no quote, brace, bracket, comma, `#`, `$`, backslash or other YAML or shell syntax, no `..`, no leading
# `-` — an upstream answer `1',X:{...` would otherwise add keys to the definition it is written into.
_VERSION = re.compile(r"(?!-)(?!.*\.\.)[A-Za-z0-9._+~:@/-]{1,256}")


@dataclass(frozen=True)
class TrackerRef:
    """One tracker of one definition."""

    definition: str
    index: int
    spec: Tracker

    @property
    def key(self) -> str:
        return f"{self.definition}/track[{self.index}]"

    @property
    def label(self) -> str:
        return f"{self.key} ({self.spec.kind})"


@dataclass(frozen=True)
class Polled:
    """What one poll of a tracker found: a ``result``, or a one-line ``error``."""

    key: str
    kind: str
    result: str | None = None
    error: str | None = None
    validators: Mapping[str, str] = field(default_factory=dict)
    memory: Mapping[str, Any] = field(default_factory=dict)
    not_before: str | None = None

    def state(self) -> TrackerState:
        """The row :meth:`~bastion.factory.FactoryState.record` stores for this poll."""
        return TrackerState(
            self.key,
            self.kind,
            self.result,
            dict(self.validators),
            dict(self.memory),
            self.error,
            self.not_before,
        )


def check_version(text: str, where: str) -> str:
    """``text`` as a tracker result, or a :class:`BastionError` saying it is none."""
    text = text.strip()
    if not _VERSION.fullmatch(text):
        shown = text[:40].encode("unicode_escape").decode("ascii")
        raise BastionError(f"{where}: the answer is not a version ({shown!r})")
    return text


def variables(ref: TrackerRef, result: str) -> dict[str, str]:
    """The values ``ref``'s variables take from ``result``; a capture that does not match is an error."""
    values: dict[str, str] = {}
    for name, spec in ref.spec.vars.items():
        value = capture(spec, result)
        if value is None:
            raise BastionError(f"{ref.label}: result {result!r} does not match the capture of {name}")
        values[name] = check_version(value, f"{ref.label} {name}")
    return values


def _failed(ref: TrackerRef, err: BastionError, previous: TrackerState | None) -> Polled:
    return Polled(
        ref.key, ref.spec.kind, error=err.diagnostic(), validators=previous.validators if previous else {}
    )


def _unchanged(ref: TrackerRef, previous: TrackerState, answer: Answer) -> Polled:
    return Polled(
        ref.key, ref.spec.kind, previous.result, validators=answer.validators, memory=previous.memory
    )


def _status(answer: Answer, url: str) -> None:
    if answer.status >= 300:
        raise BastionError(f"{url}: HTTP {answer.status}")


# --- GitHub ---------------------------------------------------------------------------------------


def _github_headers(spec: GithubReleaseTracker | GithubTagTracker) -> dict[str, str]:
    # REST API docs, "Getting started": the media type and API version headers.
    headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
    if spec.token_env:
        token = os.environ.get(spec.token_env, "")
        if token:
            headers["Authorization"] = f"Bearer {token}"
    return headers


def _rate_limited(answer: Answer) -> str | None:
    """The reset time when the answer says the rate limit is spent (REST API docs, "Rate limits":
    ``x-ratelimit-remaining: 0`` with ``x-ratelimit-reset`` in epoch seconds)."""
    remaining, reset = answer.headers.get("x-ratelimit-remaining"), answer.headers.get("x-ratelimit-reset")
    if remaining != "0" or reset is None or not reset.isdigit() or len(reset) > 12:
        return None
    return clock.rfc3339(int(reset))


def _github_names(
    items: Any, spec: GithubReleaseTracker | GithubTagTracker, url: str, what: str
) -> list[str]:
    """The names in a ``/releases`` (``tag_name``; drafts and prereleases skipped) or ``/tags``
    (``name``) answer that ``match`` finds, in the API's order."""
    if not isinstance(items, list):
        raise BastionError(f"{url}: expected a JSON array of {what}")
    names = []
    for item in items:
        if not isinstance(item, dict):
            raise BastionError(f"{url}: expected a JSON array of {what} objects")
        if what == "releases":
            if item.get("draft") is True or item.get("prerelease") is True:
                continue
            name = item.get("tag_name")
        else:
            name = item.get("name")
        if not isinstance(name, str):
            raise BastionError(
                f"{url}: a {what[:-1]} without a {'tag_name' if what == 'releases' else 'name'}"
            )
        if spec.match is None or re.search(spec.match, name):
            names.append(name)
    return names


def poll_github(ref: TrackerRef, previous: TrackerState | None, http: Http) -> Polled:
    """``GET /repos/{owner}/{repo}/releases`` or ``/tags``: the newest matching release tag or tag."""
    spec = ref.spec
    assert isinstance(spec, GithubReleaseTracker | GithubTagTracker)
    if previous is not None and previous.not_before and previous.not_before > clock.rfc3339():
        error = f"{ref.label}: GitHub rate limit spent; not polling until {previous.not_before}"
        return Polled(
            ref.key, spec.kind, error=error, validators=previous.validators, not_before=previous.not_before
        )
    base = os.environ.get(ENV_GITHUB_API, "").rstrip("/") or _GITHUB_API
    what = "releases" if isinstance(spec, GithubReleaseTracker) else "tags"
    url = f"{base}/repos/{spec.owner}/{spec.repo}/{what}?per_page=100"
    try:
        answer = http.get(
            url, validators=previous.validators if previous else None, headers=_github_headers(spec)
        )
        reset = _rate_limited(answer)
        if reset is not None and answer.status in (403, 429):
            error = f"{ref.label}: GitHub rate limit spent; not polling until {reset}"
            return Polled(ref.key, spec.kind, error=error, validators=answer.validators, not_before=reset)
        if answer.not_modified and previous is not None and previous.result is not None:
            return _unchanged(ref, previous, answer)
        _status(answer, url)
        names = _github_names(load_json(answer.body, where=url), spec, url, what)
        if not names:
            raise BastionError(f"{url}: no {what[:-1]} matches {spec.match!r}")
        # The API lists releases newest first (by creation) and tags in its own order, newest first.
        result = check_version(names[0], url)
        variables(ref, result)
    except BastionError as err:
        return _failed(ref, err, previous)
    return Polled(ref.key, spec.kind, result, validators=answer.validators, not_before=reset)


# --- url, json-url --------------------------------------------------------------------------------


def poll_url(ref: TrackerRef, previous: TrackerState | None, http: Http) -> Polled:
    spec = ref.spec
    assert isinstance(spec, UrlTracker)
    try:
        answer = http.get(spec.url, validators=previous.validators if previous else None)
        if answer.not_modified and previous is not None and previous.result is not None:
            return _unchanged(ref, previous, answer)
        _status(answer, spec.url)
        try:
            text = answer.body.decode("utf-8")
        except UnicodeDecodeError:
            raise BastionError(f"{spec.url}: the answer is not UTF-8 text") from None
        if spec.match is not None:
            found = re.search(spec.match, text)
            if found is None:
                raise BastionError(f"{spec.url}: nothing matches {spec.match!r}")
            text = found.group(1) if found.re.groups else found.group(0)
        result = check_version(text, spec.url)
        variables(ref, result)
    except BastionError as err:
        return _failed(ref, err, previous)
    return Polled(ref.key, spec.kind, result, validators=answer.validators)


_STEP = re.compile(r"([A-Za-z0-9_-]+)|\[([0-9]+)\]")


def json_path(document: Any, path: str, where: str) -> str:
    """The string or number at ``path`` (``releases[0].version``) in ``document``."""
    node = document
    for part in path.split("."):
        for key, index in _STEP.findall(part):
            if key:
                if not isinstance(node, dict) or key not in node:
                    raise BastionError(f"{where}: no {key!r} at {path}")
                node = node[key]
            else:
                if not isinstance(node, list) or int(index) >= len(node):
                    raise BastionError(f"{where}: no item [{index}] at {path}")
                node = node[int(index)]
    if isinstance(node, bool) or not isinstance(node, str | int | float):
        raise BastionError(f"{where}: {path} is not a string or number")
    return str(node)


def poll_json_url(ref: TrackerRef, previous: TrackerState | None, http: Http) -> Polled:
    spec = ref.spec
    assert isinstance(spec, JsonUrlTracker)
    try:
        answer = http.get(spec.url, validators=previous.validators if previous else None)
        if answer.not_modified and previous is not None and previous.result is not None:
            return _unchanged(ref, previous, answer)
        _status(answer, spec.url)
        result = check_version(
            json_path(load_json(answer.body, where=spec.url), spec.path, spec.url), spec.url
        )
        variables(ref, result)
    except BastionError as err:
        return _failed(ref, err, previous)
    return Polled(ref.key, spec.kind, result, validators=answer.validators)


# --- oci-image ------------------------------------------------------------------------------------


def poll_oci(ref: TrackerRef, previous: TrackerState | None) -> Polled:
    """The digest of the tag, through the registry client (HEAD, falling back to GET)."""
    spec = ref.spec
    assert isinstance(spec, OciImageTracker)
    from bastion.oci import RegistryClient, parse_reference

    try:
        reference = parse_reference(spec.image)
        with RegistryClient(reference.registry, retries=1, timeout=20.0) as client:
            descriptor = client.head_manifest(reference.repository, reference.ref)
        if descriptor is None:
            raise BastionError(f"{spec.image}: no such tag in the registry")
        result = descriptor.digest
        variables(ref, result)
    except BastionError as err:
        return _failed(ref, err, previous)
    return Polled(ref.key, spec.kind, result)


# --- increment ------------------------------------------------------------------------------------


def poll_increment(
    ref: TrackerRef, previous: TrackerState | None, now: Mapping[str, str], written: Mapping[str, str]
) -> Polled:
    """The release counter given the values the variables take ``now``, against those of the last
    poll (or, before any, the values the definition is ``written`` with and its own counter): the
    same when none of ``on`` nor ``reset-on`` moved, 1 when ``reset-on`` moved, else one more."""
    spec = ref.spec
    assert isinstance(spec, IncrementTracker)
    var = next(iter(spec.vars.values()))
    watched = {key: now.get(key, "") for key in (*spec.on, spec.reset_on)}
    seen: Any = {key: written.get(key, "") for key in watched}
    counter_text = var.value
    if previous is not None and previous.result is not None and previous.memory.get("watched"):
        seen, counter_text = previous.memory["watched"], previous.result
    if not isinstance(seen, dict) or not counter_text.isdigit() or len(counter_text) > 9:
        return Polled(
            ref.key, spec.kind, error=f"{ref.label}: the stored counter {counter_text!r} is not a number"
        )
    if watched[spec.reset_on] != seen.get(spec.reset_on):
        counter = 1
    elif any(watched[key] != seen.get(key) for key in spec.on):
        counter = int(counter_text) + 1
    else:
        counter = int(counter_text)
    return Polled(ref.key, spec.kind, str(counter), memory={"watched": watched})
