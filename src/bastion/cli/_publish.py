"""``bastion push``, ``pull`` and ``mirror``: images with their attestations, to, from and between
registries; and the registry options every command that may reach a registry shares."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bastion.cli._console import info, stdout
from bastion.cli._options import image_ref
from bastion.config import Settings

if TYPE_CHECKING:
    from bastion.attest import RegistryOptions

InsecureOpt = Annotated[
    bool,
    typer.Option(
        "--insecure",
        help="Allow plain HTTP, and TLS without certificate checks, to registries that are not on loopback.",
    ),
]
CaFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--ca-file", help="Trust this CA bundle (PEM) for registries' TLS certificates.", show_default=False
    ),
]
_CREDENTIALS = (
    "Registry credentials: BASTION_REGISTRY_USERNAME/BASTION_REGISTRY_PASSWORD, else Docker's config.json."
)


def registry_options(insecure: bool, ca_file: Path | None) -> RegistryOptions:
    from bastion.attest import RegistryOptions

    return RegistryOptions(insecure=insecure, ca_file=ca_file)


def push_command(
    image: Annotated[str, typer.Argument(help="An image in the local store.", show_default=False)],
    reference: Annotated[
        str, typer.Argument(help="Where to push: HOST[:PORT]/REPO[:TAG].", show_default=False)
    ],
    insecure: InsecureOpt = False,
    ca_file: CaFileOpt = None,
) -> None:
    """Push IMAGE, every platform and every attestation, to a registry; prints REFERENCE@DIGEST.

    Attestations go up as cosign v3 attaches them (OCI 1.1 artifacts with a subject), listed by the
    registry's referrers API, else in the sha256-<hex> fallback tag that Bastion keeps up to date.
    """
    from bastion.oci import Store, TransferStats
    from bastion.pipeline import publish

    image = image_ref("push", image).text
    target = image_ref("push destination", reference).remote
    store = Store(Settings.from_env().store_dir)
    stats = TransferStats()
    result = publish(store, image, reference, registry_options(insecure, ca_file), stats=stats)
    info(
        f"pushed {image} to {target}: {stats.transferred} blobs uploaded ({stats.bytes} bytes), "
        f"{stats.skipped} already there, {stats.mounted} mounted; {result.artifacts} attestations attached"
    )
    stdout.print(f"{target.with_ref(tag=None, digest=None)}@{result.descriptor.digest}", markup=False)


def pull_command(
    reference: Annotated[str, typer.Argument(help="HOST[:PORT]/REPO[:TAG|@DIGEST].", show_default=False)],
    tag: Annotated[
        str | None,
        typer.Option(
            "--tag", help="Tag it so in the local store (default: the reference).", show_default=False
        ),
    ] = None,
    insecure: InsecureOpt = False,
    ca_file: CaFileOpt = None,
) -> None:
    """Pull an image, every platform and every attestation, into the local store; prints TAG DIGEST.

    Everything is checked against its digest before it is stored; the tag is written last."""
    from bastion.attest import pull
    from bastion.oci import Store, TransferStats

    source = image_ref("pull", reference).remote
    store = Store(Settings.from_env().store_dir)
    stats = TransferStats()
    with registry_options(insecure, ca_file).client(source.registry) as client:
        result = pull(client, reference, store, tag, stats=stats)
    info(
        f"pulled {source}: {stats.transferred} blobs ({stats.bytes} bytes), {stats.skipped} already in the store; "
        f"{result.artifacts} attestations recorded"
    )
    stdout.print(f"{result.descriptor.ref_name} {result.descriptor.digest}", markup=False)


def mirror_command(
    source: Annotated[
        str, typer.Argument(help="HOST[:PORT]/REPO[:TAG|@DIGEST] to copy.", show_default=False)
    ],
    destination: Annotated[
        str, typer.Argument(help="HOST[:PORT]/REPO[:TAG] to copy to.", show_default=False)
    ],
    insecure: InsecureOpt = False,
    ca_file: CaFileOpt = None,
) -> None:
    """Copy an image between repositories or registries: every platform, every attestation (and
    cosign's legacy .att/.sig tags), digests unchanged; prints DESTINATION@DIGEST."""
    from bastion.attest import mirror
    from bastion.oci import TransferStats

    src, dst = image_ref("mirror", source).remote, image_ref("mirror", destination).remote
    options = registry_options(insecure, ca_file)
    stats = TransferStats()
    with options.client(src.registry) as src_client, options.client(dst.registry) as dst_client:
        result = mirror(src_client, source, dst_client, destination, stats=stats)
    legacy = f", legacy tags: {', '.join(result.legacy_tags)}" if result.legacy_tags else ""
    info(
        f"mirrored {src} to {dst}: {stats.transferred} blobs copied ({stats.bytes} bytes), {stats.mounted} mounted, "
        f"{stats.skipped} already there; {result.artifacts} attestations{legacy}"
    )
    stdout.print(f"{dst.with_ref(tag=None, digest=None)}@{result.descriptor.digest}", markup=False)


def register(app: typer.Typer) -> None:
    for name, command in (("push", push_command), ("pull", pull_command), ("mirror", mirror_command)):
        app.command(name, epilog=_CREDENTIALS)(command)
