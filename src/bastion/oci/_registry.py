"""A client for the OCI distribution spec v1.1 (``spec.md``) over httpx.

Trust: nothing received is believed. Every manifest is hashed and compared with the digest asked for
(or the ``Docker-Content-Digest`` the registry claims for a tag); every blob is hashed while it streams
and refused with :class:`~bastion.errors.IntegrityError` before the last byte reaches the caller when its
digest or size is wrong (the caller's writer, e.g. a store ``BlobWriter``, then never commits).

Plain HTTP is used only for loopback hosts or when ``insecure`` is asked for; HTTPS otherwise.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import ssl
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from types import TracebackType

import httpx

from bastion.errors import InputError, IntegrityError, NetworkError
from bastion.oci._auth import Authenticator, Credentials, find_credentials
from bastion.oci._deadline import DeadlineTransport
from bastion.oci._http import (
    Http,
    Readable,
    RetryPolicy,
    VerifyingReader,
    Writable,
    content_length,
    expect,
    read_limited,
    sha256_digest,
)
from bastion.oci._limits import RegistryLimits
from bastion.oci._model import (
    INDEX_MEDIA_TYPES,
    MANIFEST_MEDIA_TYPES,
    MEDIA_TYPE_DOCKER_LIST,
    MEDIA_TYPE_DOCKER_MANIFEST,
    MEDIA_TYPE_INDEX,
    MEDIA_TYPE_MANIFEST,
    Descriptor,
    check_digest,
    load_json_object,
    parse_manifest,
)
from bastion.oci._reference import Reference, check_repository, check_tag_or_digest, is_loopback

MAX_MANIFEST_SIZE = 4 * 1024 * 1024  # spec.md "Pushing Manifests": registries SHOULD accept at least 4 MiB
_READ_CHUNK = 1024 * 1024
# spec.md "Pulling manifests": the client lists the manifest types it accepts.
ACCEPT_MANIFESTS = ", ".join(
    (MEDIA_TYPE_INDEX, MEDIA_TYPE_MANIFEST, MEDIA_TYPE_DOCKER_LIST, MEDIA_TYPE_DOCKER_MANIFEST)
)


# A blob to upload: its bytes, a file, or a callable opening a fresh stream (called again on a retry).
BlobSource = bytes | Path | Callable[[], AbstractContextManager[Readable]]


class RegistryClient:
    """One registry (``host[:port]``): manifests, blobs, tags, uploads and referrers."""

    def __init__(
        self,
        registry: str,
        *,
        credentials: Credentials | None = None,
        insecure: bool = False,
        tls: bool | None = None,
        ca_file: Path | None = None,
        retries: int = 4,
        backoff: float = 0.5,
        chunk_size: int = 8 * 1024 * 1024,
        monolithic_threshold: int = 16 * 1024 * 1024,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
        docker_config: Path | None = None,
        limits: RegistryLimits | None = None,
    ) -> None:
        """``tls`` forces HTTPS on or off; by default plain HTTP is used only for loopback hosts or with
        ``insecure`` (which also skips certificate checks when TLS is used). ``ca_file`` adds a CA bundle.
        Blobs up to ``monolithic_threshold`` bytes are uploaded in one request, larger ones in
        ``chunk_size`` pieces. ``timeout`` bounds each connect, read and write; ``limits`` (default: from
        the environment, see :class:`~bastion.oci.RegistryLimits`) bound each request and all of them."""
        self.registry = registry
        host = Reference(registry, "x").hostname
        use_tls = tls if tls is not None else not (insecure or is_loopback(host))
        self.base_url = f"{'https' if use_tls else 'http'}://{registry}"
        verify: ssl.SSLContext | bool = not insecure
        if ca_file is not None:
            verify = ssl.create_default_context(cafile=str(ca_file))
        self.chunk_size = chunk_size
        self.monolithic_threshold = monolithic_threshold
        self.retry = RetryPolicy(retries, backoff)
        limits = limits if limits is not None else RegistryLimits.from_env()
        client = httpx.Client(
            timeout=timeout,
            verify=verify,
            transport=transport if transport is not None else DeadlineTransport(verify),
            follow_redirects=True,
            trust_env=False,
        )
        auth = Authenticator(
            registry, find_credentials(registry, explicit=credentials, docker_config=docker_config)
        )
        self._http = Http(registry, self.base_url, client, auth, self.retry, limits)

    @classmethod
    def for_reference(cls, ref: Reference, **options: object) -> RegistryClient:
        return cls(ref.registry, **options)  # type: ignore[arg-type]

    def close(self) -> None:
        self._http.client.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- API version and tags ------------------------------------------------------------------------

    def check_version(self) -> None:
        """spec.md "Determining support": ``GET /v2/`` answers 200 on a registry we may use."""
        with self._http.open("GET", "/v2/") as response:
            expect(response, {200}, f"registry {self.registry}")
            version = response.headers.get("docker-distribution-api-version")
            if version is not None and not version.startswith("registry/2."):
                raise NetworkError(
                    f"registry {self.registry} speaks API version {version!r}, not registry/2.x"
                )

    def list_tags(self, repo: str) -> list[str]:
        """spec.md "Listing Tags", following ``Link: <...>; rel="next"`` pages."""
        tags: list[str] = []
        url: str | httpx.URL = f"/v2/{check_repository(repo)}/tags/list"
        for _page in range(10_000):
            with self._http.open("GET", url, scope=_pull(repo)) as response:
                what = f"tag list of {self.registry}/{repo}"
                expect(response, {200}, what)
                doc = load_json_object(read_limited(response, MAX_MANIFEST_SIZE, what), "tag list", what)
                listed = doc.get("tags") or []
                if not isinstance(listed, list) or not all(isinstance(t, str) for t in listed):
                    raise IntegrityError(f"tag list of {self.registry}/{repo} is not a list of strings")
                tags.extend(listed)
                link = response.links.get("next", {}).get("url")
                if not link:
                    return tags
                url = response.request.url.join(link)
        raise NetworkError(f"tag list of {self.registry}/{repo} does not end")

    # -- manifests -------------------------------------------------------------------------------------

    def get_manifest(self, repo: str, ref: str) -> tuple[Descriptor, bytes]:
        """Fetch a manifest or index by tag or digest, verified against the digest asked for (or the one
        the registry states for a tag)."""
        what = f"manifest {self.registry}/{repo}:{ref}"
        with self._http.open(
            "GET", self._url(repo, "manifests", ref), scope=_pull(repo), headers={"Accept": ACCEPT_MANIFESTS}
        ) as response:
            expect(response, {200}, what)
            data = read_limited(response, MAX_MANIFEST_SIZE, what)
            claimed = response.headers.get("docker-content-digest")
            content_type = response.headers.get("content-type", "")
        digest = sha256_digest(data)
        # spec.md "Pulling manifests": a client SHOULD verify the returned manifest against the digest.
        if ref.startswith("sha256:") and digest != ref:
            raise IntegrityError(f"{what} has digest {digest}, not the one asked for")
        if claimed and claimed.startswith("sha256:") and claimed != digest:
            raise IntegrityError(f"{what} has digest {digest}, but the registry says {claimed}")
        return Descriptor(_document_media_type(data, content_type, what), digest, len(data)), data

    def head_manifest(self, repo: str, ref: str) -> Descriptor | None:
        """The descriptor of a manifest if the registry has it, else ``None``."""
        what = f"manifest {self.registry}/{repo}:{ref}"
        with self._http.open(
            "HEAD", self._url(repo, "manifests", ref), scope=_pull(repo), headers={"Accept": ACCEPT_MANIFESTS}
        ) as response:
            if response.status_code == 404:
                return None
            expect(response, {200}, what)
            digest = response.headers.get("docker-content-digest")
            size = content_length(response)
            media_type = response.headers.get("content-type", "").split(";")[0].strip()
        if ref.startswith("sha256:") and digest is not None and digest != ref:
            raise IntegrityError(f"{what}: the registry answers for {digest}")
        if digest is None or size is None or media_type not in INDEX_MEDIA_TYPES | MANIFEST_MEDIA_TYPES:
            return self.get_manifest(repo, ref)[0]  # the headers are optional; the body is authoritative
        if size > MAX_MANIFEST_SIZE:
            raise InputError(f"{what} is {size} bytes, more than the limit of {MAX_MANIFEST_SIZE}")
        return Descriptor(media_type, check_digest(digest, where=what), size)

    def put_manifest(self, repo: str, ref: str, data: bytes, media_type: str) -> Descriptor:
        """Push a manifest or index under a tag or its digest; returns its descriptor."""
        return self.push_manifest(repo, ref, data, media_type)[0]

    def push_manifest(
        self, repo: str, ref: str, data: bytes, media_type: str, *, if_match: str | None = None
    ) -> tuple[Descriptor, httpx.Headers]:
        """:meth:`put_manifest`, also returning the response headers (``OCI-Subject``, ``ETag``).

        ``if_match`` sends ``If-Match`` (RFC 9110 section 13.1.1) for registries that honour it.
        """
        what = f"manifest {self.registry}/{repo}:{ref}"
        if len(data) > MAX_MANIFEST_SIZE:
            raise InputError(f"{what} is {len(data)} bytes, more than the limit of {MAX_MANIFEST_SIZE}")
        digest = sha256_digest(data)
        if ref.startswith("sha256:") and ref != digest:
            raise InputError(f"{what}: the document's digest is {digest}")
        headers = {"Content-Type": media_type}
        if if_match:
            headers["If-Match"] = if_match
        with self._http.open(
            "PUT", self._url(repo, "manifests", ref), scope=_push(repo), headers=headers, content=data
        ) as response:
            if response.status_code == 412:
                raise ConcurrentUpdate(f"{what} changed since it was read")
            expect(response, {200, 201}, what)
            claimed = response.headers.get("docker-content-digest")
            headers_out = response.headers
        if claimed and claimed != digest:
            raise IntegrityError(f"{what}: the registry stored {claimed}, but we sent {digest}")
        return Descriptor(media_type, digest, len(data)), headers_out

    def delete_manifest(self, repo: str, ref: str) -> None:
        with self._http.open("DELETE", self._url(repo, "manifests", ref), scope=_delete(repo)) as response:
            expect(response, {200, 202, 204}, f"delete {self.registry}/{repo}:{ref}")

    # -- blobs -----------------------------------------------------------------------------------------

    def blob_exists(self, repo: str, digest: str, size: int | None = None) -> bool:
        what = f"blob {self.registry}/{repo}@{digest}"
        with self._http.open("HEAD", self._url(repo, "blobs", digest), scope=_pull(repo)) as response:
            if response.status_code == 404:
                return False
            expect(response, {200}, what)
            length = content_length(response)
        if size is not None and length is not None and length != size:
            raise IntegrityError(f"{what} is {length} bytes on the registry, expected {size}")
        return True

    @contextlib.contextmanager
    def open_blob(self, repo: str, digest: str, size: int | None = None) -> Iterator[VerifyingReader]:
        """Stream a blob; the reader raises IntegrityError at the end if it does not match."""
        what = f"blob {self.registry}/{repo}@{digest}"
        with self._http.open(
            "GET", self._url(repo, "blobs", check_digest(digest)), scope=_pull(repo), size=size
        ) as resp:
            expect(resp, {200}, what)
            length = content_length(resp)
            if size is not None and length is not None and length != size:
                raise IntegrityError(f"{what} is {length} bytes, expected {size}")
            yield VerifyingReader(resp.iter_bytes(_READ_CHUNK), digest, size, what)

    def get_blob(self, repo: str, digest: str, sink: Writable, *, size: int | None = None) -> int:
        """Stream a blob into ``sink``; returns its size. On IntegrityError the sink has received
        unverified bytes: use a writer that is discarded unless committed (a store ``BlobWriter``)."""
        with self.open_blob(repo, digest, size) as reader:
            while chunk := reader.read(_READ_CHUNK):
                sink.write(chunk)
            return reader.received

    def mount_blob(self, repo: str, digest: str, from_repo: str) -> str | None:
        """spec.md "Mounting a blob from another repository": ``None`` if mounted, else the upload URL
        the registry opened instead (202), to upload to."""
        params = {"mount": check_digest(digest), "from": check_repository(from_repo)}
        scope = f"{_push(repo)} {_pull(from_repo)}"
        with self._http.open(
            "POST", f"/v2/{check_repository(repo)}/blobs/uploads/", scope=scope, params=params
        ) as response:
            expect(response, {201, 202}, f"mount {digest} from {from_repo} into {repo}")
            if response.status_code == 201:
                return None
            return _location(response, f"upload to {repo}")

    def put_blob(
        self, repo: str, descriptor: Descriptor, source: BlobSource, *, mount_from: str | None = None
    ) -> str:
        """Upload a blob unless the registry has it; returns ``"exists"``, ``"mounted"`` or ``"uploaded"``.

        The content is checked against ``descriptor`` while it is sent; a mismatch cancels the upload
        before the final ``PUT`` and raises IntegrityError. A failed upload is started again from the
        beginning (bounded by the retry policy), since the registry's partial state is unknown.
        """
        if self.blob_exists(repo, descriptor.digest):
            return "exists"
        location: str | None = None
        if mount_from is not None and mount_from != repo:
            location = self.mount_blob(repo, descriptor.digest, mount_from)
            if location is None:
                return "mounted"
        attempt = 0
        while True:
            try:
                if location is None:
                    location = self._start_upload(repo)
                self._upload(repo, location, descriptor, source)
                return "uploaded"
            except NetworkError:
                self._cancel_upload(repo, location)
                location = None
                if attempt >= self.retry.attempts:
                    raise
                if self.blob_exists(repo, descriptor.digest):
                    return "uploaded"
                self.retry_sleep(attempt)
                attempt += 1
            except BaseException:
                self._cancel_upload(repo, location)
                raise

    # -- referrers (implemented in _referrers.py) -----------------------------------------------------

    def referrers(self, repo: str, digest: str, artifact_type: str | None = None) -> list[Descriptor]:
        """Manifests whose ``subject`` is ``digest``: the referrers API, else the fallback tag."""
        from bastion.oci._referrers import list_referrers

        return list_referrers(self, repo, digest, artifact_type)

    def attach(self, repo: str, manifest: bytes, descriptor: Descriptor, subject: Descriptor) -> Descriptor:
        """Push an artifact manifest whose ``subject`` is ``subject`` and make it findable as a referrer."""
        from bastion.oci._referrers import attach_artifact

        return attach_artifact(self, repo, manifest, descriptor, subject)

    def open_raw(
        self, method: str, path: str, *, scope: str, accept: str | None = None
    ) -> AbstractContextManager[httpx.Response]:
        """A raw request to a path under this registry (used for the referrers API)."""
        headers = {"Accept": accept} if accept else None
        return self._http.open(method, path, scope=scope, headers=headers)

    # -- internals -------------------------------------------------------------------------------------

    def _url(self, repo: str, kind: str, ref: str) -> str:
        return f"/v2/{check_repository(repo)}/{kind}/{check_tag_or_digest(ref)}"

    def retry_sleep(self, attempt: int) -> None:
        """Wait before retry number ``attempt`` (0-based) as the retry policy says."""
        time.sleep(self.retry.delay(attempt))

    def _start_upload(self, repo: str) -> str:
        """spec.md "Pushing blobs": ``POST /v2/<name>/blobs/uploads/`` opens an upload session."""
        with self._http.open(
            "POST", f"/v2/{check_repository(repo)}/blobs/uploads/", scope=_push(repo)
        ) as response:
            expect(response, {202}, f"start upload to {self.registry}/{repo}")
            return _location(response, f"upload to {repo}")

    def _cancel_upload(self, repo: str, location: str | None) -> None:
        if location is None:
            return
        with (
            contextlib.suppress(NetworkError, InputError),
            self._http.open("DELETE", location, scope=_push(repo), retry=False),
        ):
            pass

    def _upload(self, repo: str, location: str, desc: Descriptor, source: BlobSource) -> None:
        what = f"upload of {desc.digest} to {self.registry}/{repo}"
        with _open_source(source) as reader:
            if desc.size <= self.monolithic_threshold:
                # spec.md "Pushing a blob monolithically": POST, then one PUT with ?digest=.
                data = reader.read(desc.size + 1)
                _check_content(hashlib.sha256(data), len(data), desc, what)
                self._finish(repo, location, desc, data, what)
                return
            # spec.md "Pushing a blob in chunks": PATCH with Content-Range, each answer names the next URL.
            hasher = hashlib.sha256()
            offset = 0
            while chunk := _read_full(reader, self.chunk_size):
                if offset + len(chunk) > desc.size:
                    raise IntegrityError(f"{what}: the source is longer than {desc.size} bytes")
                hasher.update(chunk)
                headers = {
                    "Content-Type": "application/octet-stream",
                    "Content-Range": f"{offset}-{offset + len(chunk) - 1}",
                }
                with self._http.open(
                    "PATCH", location, scope=_push(repo), headers=headers, content=chunk, retry=False
                ) as response:
                    expect(response, {202}, what)
                    location = _location(response, what)
                offset += len(chunk)
            _check_content(hasher, offset, desc, what)
            self._finish(repo, location, desc, b"", what)

    def _finish(self, repo: str, location: str, desc: Descriptor, data: bytes, what: str) -> None:
        headers = {"Content-Type": "application/octet-stream"}
        with self._http.open(
            "PUT",
            location,
            scope=_push(repo),
            headers=headers,
            params={"digest": desc.digest},
            content=data,
            retry=False,
        ) as response:
            expect(response, {201}, what)
            claimed = response.headers.get("docker-content-digest")
        if claimed and claimed != desc.digest:
            raise IntegrityError(f"{what}: the registry stored {claimed}")


class ConcurrentUpdate(NetworkError):
    """A conditional ``PUT`` lost to another writer (412); the caller reads again and retries."""


def _pull(repo: str) -> str:
    return f"repository:{repo}:pull"


def _push(repo: str) -> str:
    return f"repository:{repo}:pull,push"


def _delete(repo: str) -> str:
    return f"repository:{repo}:delete"


def _location(response: httpx.Response, what: str) -> str:
    location = response.headers.get("location")
    if not location:
        raise NetworkError(f"{what}: the registry gave no Location for the upload")
    return str(response.request.url.join(location))


def _document_media_type(data: bytes, content_type: str, what: str) -> str:
    """A manifest's media type: its ``mediaType`` field, else the Content-Type it was served with."""
    doc = load_json_object(data, "manifest", what)
    declared = doc.get("mediaType")
    media_type = declared if isinstance(declared, str) else content_type.split(";", maxsplit=1)[0].strip()
    if media_type not in INDEX_MEDIA_TYPES | MANIFEST_MEDIA_TYPES:
        if "manifests" in doc:
            return MEDIA_TYPE_INDEX
        if "layers" in doc:
            parse_manifest(data, where=what)
            return MEDIA_TYPE_MANIFEST
        raise IntegrityError(
            f"{what} is a {media_type or 'document of unknown type'}, not a manifest or index"
        )
    return media_type


def _check_content(hasher: hashlib._Hash, size: int, desc: Descriptor, what: str) -> None:
    actual = "sha256:" + hasher.hexdigest()
    if actual != desc.digest or size != desc.size:
        raise IntegrityError(
            f"{what}: the source is {actual} ({size} bytes), not {desc.size} bytes of {desc.digest}"
        )


def _read_full(reader: Readable, size: int) -> bytes:
    parts: list[bytes] = []
    wanted = size
    while wanted > 0 and (part := reader.read(wanted)):
        parts.append(part)
        wanted -= len(part)
    return b"".join(parts)


@contextlib.contextmanager
def _open_source(source: BlobSource) -> Iterator[Readable]:
    if isinstance(source, bytes):
        yield io.BytesIO(source)
    elif isinstance(source, Path):
        with source.open("rb") as f:
            yield f
    else:
        with source() as reader:
            yield reader
