"""A small image that passes every rule, built in a directory, for tests to plant one problem in.

Owners and modes that a test plants are recorded as overrides (as a layer's tar header would carry
them), so nothing setuid or device-like is ever created on the test machine.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from bastion.image import ImageTarget
from tests.compliance.imagefs import target_from_dir

PASSWD = (
    "root:x:0:0:root:/root:/usr/sbin/nologin\n"
    "nonroot:x:65532:65532:nonroot:/home/nonroot:/usr/sbin/nologin\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
)
GROUP = "root:x:0:\nshadow:x:42:\nnonroot:x:65532:\nnogroup:x:65534:\n"
SHADOW = "root:*:20000:0:99999:7:::\nnonroot:!:20000:0:99999:7:::\nnobody:*:20000:0:99999:7:::\n"


def private_key_pem() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def ca_certificate_pem() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Bastion Test Root")])
    start = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM)


@dataclass
class Crafted:
    root: Path
    config: dict[str, Any] = field(default_factory=dict)
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)

    def write(
        self, path: str, content: str | bytes, *, mode: int = 0o644, uid: int = 0, gid: int = 0
    ) -> None:
        host = self.root / path.lstrip("/")
        host.parent.mkdir(parents=True, exist_ok=True)
        host.write_bytes(content.encode() if isinstance(content, str) else content)
        host.chmod(mode & 0o1777)  # the disk copy (fs:// reads it) never gets setuid or setgid
        self.overrides[path] = {"mode": mode, "uid": uid, "gid": gid}

    def mkdir(self, path: str, *, mode: int = 0o755, uid: int = 0, gid: int = 0) -> None:
        host = self.root / path.lstrip("/")
        host.mkdir(parents=True, exist_ok=True)
        host.chmod(mode & 0o1777)
        self.overrides[path] = {"mode": mode, "uid": uid, "gid": gid}

    def symlink(self, path: str, target: str) -> None:
        host = self.root / path.lstrip("/")
        host.parent.mkdir(parents=True, exist_ok=True)
        host.symlink_to(target)

    def remove(self, path: str) -> None:
        (self.root / path.lstrip("/")).unlink()
        self.overrides.pop(path, None)

    def set(self, path: str, **changes: Any) -> None:
        self.overrides.setdefault(path, {}).update(changes)

    @property
    def image_config(self) -> dict[str, Any]:
        config: dict[str, Any] = self.config.setdefault("config", {})
        return config

    def target(self) -> ImageTarget:
        return target_from_dir(self.root, config=self.config, overrides=self.overrides, name="crafted:1")


def clean_image(root: Path) -> Crafted:
    """A runtime image that passes every rule of the default profile."""
    image = Crafted(
        root,
        config={
            "created": "2025-01-02T03:04:05Z",
            "config": {
                "User": "65532",
                "Env": ["PATH=/usr/local/bin:/usr/bin", "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"],
                "Entrypoint": ["/usr/bin/python3"],
                "Healthcheck": {"Test": ["CMD", "/usr/bin/python3", "-c", "print(1)"]},
                "Labels": {
                    "dev.bastion.variant": "runtime",
                    "org.opencontainers.image.created": "2025-01-02T03:04:05Z",
                    "org.opencontainers.image.title": "crafted",
                    "org.opencontainers.image.version": "1",
                },
            },
        },
    )
    for directory in (
        "/usr",
        "/usr/bin",
        "/usr/sbin",
        "/usr/lib",
        "/etc",
        "/etc/ssl",
        "/etc/ssl/certs",
        "/var",
    ):
        image.mkdir(directory)
    image.mkdir("/var/lib/dpkg/status.d")
    image.mkdir("/root", mode=0o700)
    image.mkdir("/home")
    image.mkdir("/home/nonroot", mode=0o700, uid=65532, gid=65532)
    image.mkdir("/tmp", mode=0o1777)
    image.mkdir("/srv")
    image.symlink("/bin", "usr/bin")
    image.write("/etc/passwd", PASSWD)
    image.write("/etc/group", GROUP)
    image.write("/etc/shadow", SHADOW, mode=0o640, gid=42)
    image.write("/usr/bin/python3", b"\x7fELF python", mode=0o755)
    image.write("/usr/sbin/nologin", b"\x7fELF nologin", mode=0o755)
    image.write("/usr/lib/libssl.so.3", b"\x7fELF libssl", mode=0o644)
    image.write("/etc/ssl/certs/ca-certificates.crt", ca_certificate_pem())
    # OpenSSL's default CA file in Debian's OPENSSLDIR, as the openssl package links it.
    image.symlink("/usr/lib/ssl/cert.pem", "/etc/ssl/certs/ca-certificates.crt")
    image.write("/var/lib/dpkg/status.d/python3", "Package: python3\nVersion: 3.11\nArchitecture: amd64\n")
    return image
