"""Registry authentication: credentials, ``WWW-Authenticate`` challenges, and the bearer token flow.

Credentials are looked up in this order: given by the caller, ``BASTION_REGISTRY_USERNAME`` and
``BASTION_REGISTRY_PASSWORD``, then the ``auths`` section of Docker's ``config.json`` (``$DOCKER_CONFIG``
or ``~/.docker``; the base64 ``auth`` field, or ``username``/``password``). Credential helpers
(``credsStore``, ``credHelpers``) are not run.

The token flow follows the distribution project's ``docs/spec/auth/token.md``: a ``401`` carries
``WWW-Authenticate: Bearer realm=...,service=...,scope=...``; the client asks the realm for a token
(``GET realm?service=...&scope=...``, with basic credentials when it has them), and repeats the request
with ``Authorization: Bearer <token>``. Tokens are cached per (realm, service, scope) until they expire.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bastion.documents import load_json
from bastion.errors import InputError, NetworkError
from bastion.oci._reference import is_loopback

ENV_USERNAME = "BASTION_REGISTRY_USERNAME"
ENV_PASSWORD = "BASTION_REGISTRY_PASSWORD"  # noqa: S105 (the variable name, not a password)
# token.md "Token Response Fields": expires_in defaults to 60 seconds when the server omits it.
_DEFAULT_TOKEN_LIFETIME = 60
_EXPIRY_MARGIN = 5  # seconds: do not send a token this close to its expiry
# token.md gives no upper bound for expires_in; a longer one is believed for a day at most (and a
# 400-digit one would not fit a float).
_MAX_TOKEN_LIFETIME = 24 * 3600
MAX_TOKEN_RESPONSE = 1024 * 1024


class AuthenticationError(InputError):
    """The registry refused our credentials (or we had none).

    An input error (exit code 2): the user fixes it by giving other credentials, not by retrying.
    """


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = field(repr=False)

    def basic_header(self) -> str:
        token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode("ascii")
        return f"Basic {token}"


def find_credentials(
    registry: str,
    *,
    explicit: Credentials | None = None,
    environ: Mapping[str, str] | None = None,
    docker_config: Path | None = None,
) -> Credentials | None:
    """Credentials for ``registry`` (``host[:port]``), or ``None`` for anonymous access."""
    if explicit is not None:
        return explicit
    env = os.environ if environ is None else environ
    user, password = env.get(ENV_USERNAME), env.get(ENV_PASSWORD)
    if user and password is not None:
        return Credentials(user, password)
    path = docker_config or Path(env.get("DOCKER_CONFIG") or Path.home() / ".docker") / "config.json"
    return _from_docker_config(path, registry)


def _from_docker_config(path: Path, registry: str) -> Credentials | None:
    try:
        doc = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read Docker credentials: {exc}", where=str(path)) from None
    auths = doc.get("auths") if isinstance(doc, dict) else None
    if not isinstance(auths, dict):
        return None
    for key, entry in auths.items():
        # Docker writes keys as "host", "https://host" or "https://host/v1/"; compare the host part.
        host = re.sub(r"^[a-z]+://", "", str(key)).split("/", 1)[0]
        if host != registry or not isinstance(entry, dict):
            continue
        encoded = entry.get("auth")
        if isinstance(encoded, str) and encoded:
            try:
                user, sep, password = base64.b64decode(encoded, validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                sep = ""
            if not sep:
                raise InputError(f"auths[{key!r}].auth is not base64 of user:password", where=str(path))
            return Credentials(user, password)
        name, secret = entry.get("username"), entry.get("password")
        if isinstance(name, str) and isinstance(secret, str):
            return Credentials(name, secret)
    return None


@dataclass(frozen=True)
class Challenge:
    scheme: str  # lower case: "basic" or "bearer"
    params: Mapping[str, str]


# RFC 7235 section 2.1: challenge = auth-scheme [ 1*SP ( token68 / #auth-param ) ]; auth-param values are
# tokens or quoted strings. Hand-written because httpx does not parse WWW-Authenticate.
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"  # noqa: S105 (RFC 7230 token characters)
_PARAM_RE = re.compile(rf'\s*({_TOKEN})\s*=\s*("(?:[^"\\]|\\.)*"|{_TOKEN})\s*,?')
_SCHEME_RE = re.compile(rf"\s*,?\s*({_TOKEN})(?:\s+|$)")


def parse_challenges(values: Sequence[str]) -> list[Challenge]:
    """Parse every ``WWW-Authenticate`` header value into its challenges."""
    out: list[Challenge] = []
    for value in values:
        pos = 0
        while pos < len(value):
            scheme = _SCHEME_RE.match(value, pos)
            if not scheme:
                break
            pos = scheme.end()
            params: dict[str, str] = {}
            while (param := _PARAM_RE.match(value, pos)) is not None:
                raw = param.group(2)
                if raw.startswith('"'):
                    raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
                params[param.group(1).lower()] = raw
                pos = param.end()
            out.append(Challenge(scheme.group(1).lower(), params))
    return out


# (realm, query parameters, basic credentials) -> (HTTP status, body read within MAX_TOKEN_RESPONSE)
TokenGetter = Callable[[str, list[tuple[str, str]], str | None], tuple[int, bytes]]


class Authenticator:
    """Holds the credentials for one registry, the scheme it asked for, and cached bearer tokens."""

    def __init__(self, registry: str, credentials: Credentials | None) -> None:
        self.registry = registry
        self.credentials = credentials
        self._scheme: str | None = None
        self._bearer: Challenge | None = None
        self._tokens: dict[tuple[str, str, str], tuple[str, float]] = {}
        self._lock = threading.Lock()

    def header(self, scope: str) -> str | None:
        """The ``Authorization`` header to send up front for a request needing ``scope``, if known."""
        with self._lock:
            if self._scheme == "basic" and self.credentials is not None:
                return self.credentials.basic_header()
            if self._scheme == "bearer" and self._bearer is not None:
                cached = self._tokens.get(self._key(self._bearer, scope))
                if cached and cached[1] > time.monotonic():
                    return f"Bearer {cached[0]}"
        return None

    def answer(self, response: httpx.Response, scope: str, get_token: TokenGetter) -> str:
        """Answer a ``401``: the ``Authorization`` header to retry with (fetching a token if needed)."""
        challenges = parse_challenges(response.headers.get_list("www-authenticate"))
        bearer = next((c for c in challenges if c.scheme == "bearer"), None)
        if bearer is not None:
            return self._fetch_token(bearer, scope, get_token)
        if any(c.scheme == "basic" for c in challenges):
            if self.credentials is None:
                raise AuthenticationError(
                    f"registry {self.registry} requires a user name and password",
                    hint=f"set {ENV_USERNAME} and {ENV_PASSWORD}, or log in with docker login",
                )
            with self._lock:
                self._scheme = "basic"
            return self.credentials.basic_header()
        raise AuthenticationError(
            f"registry {self.registry} asks for an authentication scheme Bastion does not support: "
            + (", ".join(sorted({c.scheme for c in challenges})) or "none given")
        )

    def _key(self, challenge: Challenge, scope: str) -> tuple[str, str, str]:
        return (challenge.params.get("realm", ""), challenge.params.get("service", ""), scope)

    def _fetch_token(self, challenge: Challenge, scope: str, get_token: TokenGetter) -> str:
        realm = challenge.params.get("realm", "")
        url = httpx.URL(realm)
        if url.scheme not in ("http", "https") or not url.host:
            raise AuthenticationError(f"registry {self.registry} names an invalid token realm {realm!r}")
        if url.scheme == "http" and not is_loopback(url.host) and self.credentials is not None:
            # Never send a password in clear text to a realm off this machine.
            raise AuthenticationError(f"token realm {realm} is plain HTTP; refusing to send credentials")
        # token.md "Requesting a Token": one scope parameter per scope; the challenge's scope is the
        # registry's statement of what this request needs, so it wins over our guess.
        wanted = challenge.params.get("scope") or scope
        params: list[tuple[str, str]] = []
        if "service" in challenge.params:
            params.append(("service", challenge.params["service"]))
        params.extend(("scope", s) for s in wanted.split() if s)
        basic = self.credentials.basic_header() if self.credentials is not None else None
        status, body = get_token(realm, params, basic)
        if status in (401, 403):
            raise AuthenticationError(
                f"token service {url.host} refused the credentials for {self.registry}"
                + ("" if self.credentials else " (no credentials were given)"),
                hint=f"check {ENV_USERNAME}/{ENV_PASSWORD} or the Docker config",
            )
        if status != 200:
            raise NetworkError(f"token service {realm} answered HTTP {status}")
        token, lifetime = _token_from(body, realm)
        expiry = time.monotonic() + max(lifetime - _EXPIRY_MARGIN, 1)
        with self._lock:
            self._scheme = "bearer"
            self._bearer = Challenge("bearer", {k: v for k, v in challenge.params.items() if k != "scope"})
            self._tokens[self._key(self._bearer, scope)] = (token, expiry)
            self._tokens[self._key(self._bearer, wanted)] = (token, expiry)
        return f"Bearer {token}"


def _token_from(body: bytes, realm: str) -> tuple[str, int]:
    doc = load_json(body, where=f"token service {realm}", max_bytes=MAX_TOKEN_RESPONSE)
    if not isinstance(doc, dict):
        raise NetworkError(f"token service {realm} did not answer with a JSON object")
    # token.md "Token Response Fields": `token`, with `access_token` accepted for OAuth 2.0 compatibility.
    token = doc.get("token") or doc.get("access_token")
    if not isinstance(token, str) or not token:
        raise NetworkError(f"token service {realm} answered without a token")
    lifetime = doc.get("expires_in", _DEFAULT_TOKEN_LIFETIME)
    if not isinstance(lifetime, int) or isinstance(lifetime, bool) or lifetime <= 0:
        lifetime = _DEFAULT_TOKEN_LIFETIME
    return token, min(lifetime, _MAX_TOKEN_LIFETIME)
