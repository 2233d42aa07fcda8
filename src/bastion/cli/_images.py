"""``bastion build``, ``images``, ``inspect``, ``export``: images in the local store."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated

import typer
from rich.table import Table

from bastion.cli._console import RichProgress, info, stdout
from bastion.cli._options import (
    DefinitionArg,
    FormatOpt,
    ListFormat,
    LockedOpt,
    PlatformOpt,
    VariantOpt,
    definition_platforms,
    image_ref,
)
from bastion.config import Settings
from bastion.errors import InputError


class BuildFormat(StrEnum):
    text = "text"
    json = "json"


def build_command(
    definition: DefinitionArg,
    locked: LockedOpt = False,
    variant: VariantOpt = None,
    platform: PlatformOpt = None,
    output: Annotated[
        BuildFormat,
        typer.Option(
            "--format",
            help="text: '<reference> <index digest>' per variant; json: with per-platform digests.",
        ),
    ] = BuildFormat.text,
    skip_tests: Annotated[
        bool, typer.Option("--skip-tests", help="Do not run the definition's image tests.")
    ] = False,
    no_cache: Annotated[
        bool,
        typer.Option(
            "--no-cache",
            help="Assemble and write every image even when the same recipe was built into the store before.",
        ),
    ] = False,
    key: Annotated[
        str | None,
        typer.Option(
            "--key",
            help="Sign attestations with this key (a cosign-format key file, file://PATH). "
            "Default: BASTION_HOME/keys/bastion.key, created on first use.",
        ),
    ] = None,
    no_attest: Annotated[
        bool, typer.Option("--no-attest", help="Attach no signed SBOM or provenance to the images.")
    ] = False,
) -> None:
    """Build DEFINITION's variants into the local store and tag them; prints one line per variant.

    Each platform image gets signed attestations (SPDX and CycloneDX SBOMs, SLSA provenance)."""
    # Imported here, not at the top: the builder and the definition models cost start-up time
    # that every other command would pay (docs/benchmarks.md).
    from bastion.catalog import load_definition
    from bastion.pipeline import build

    settings = Settings.from_env()
    spec = load_definition(definition)
    with RichProgress() as progress:
        results = build(
            spec,
            settings,
            locked=locked,
            variants=variant,
            platforms=definition_platforms(spec, variant, platform),
            run_tests=not skip_tests,
            use_cache=not no_cache,
            attest=not no_attest,
            key=key,
            progress=progress,
        )
    if output is BuildFormat.json:
        stdout.print_json(
            json.dumps(
                [
                    {
                        "variant": r.variant,
                        "references": list(r.references),
                        "digest": r.index.digest,
                        "platforms": {
                            p.platform: {
                                "digest": p.manifest.digest,
                                "packages": p.packages,
                                "layers": p.layers,
                                "cached": p.cached,
                            }
                            for p in r.platforms
                        },
                    }
                    for r in results
                ]
            )
        )
        return
    for r in results:
        stdout.print(f"{r.references[0]} {r.index.digest}")
        for p in r.platforms:
            reused = ", unchanged: reused from the store" if p.cached else ""
            info(f"  {p.platform}: {p.manifest.digest} ({p.packages} packages, {p.layers} layers{reused})")


def images_command(output: FormatOpt = ListFormat.table) -> None:
    """List the images in the local store."""
    from bastion.oci import Store

    store = Store(Settings.from_env().store_dir)
    tags = sorted(store.list_tags().items())
    if output is ListFormat.json:
        listed = [{"reference": ref, "digest": d.digest, "mediaType": d.media_type} for ref, d in tags]
        stdout.print_json(json.dumps(listed))
        return
    table = Table("reference", "digest", "media type", box=None)
    for ref, desc in tags:
        table.add_row(ref, desc.digest, desc.media_type.rsplit(".", 1)[-1].removesuffix("+json"))
    stdout.print(table)


def inspect_command(
    image: Annotated[
        str, typer.Argument(help="A reference or digest in the local store, or oci-dir://PATH[:TAG].")
    ],
) -> None:
    """Print an image's index (or manifest), each platform's manifest and config, as JSON.

    ``annotations`` repeats the index's (or manifest's) OCI annotations and each platform's those of
    its manifest, so they are seen without reading the documents."""
    from bastion.oci import INDEX_MEDIA_TYPES, layout_image, load_json_object, parse_index, parse_manifest

    store, desc = layout_image(image_ref("inspect", image), Settings.from_env().store_dir)
    # An oci-dir:// layout is input from outside: each document is checked against its digest and
    # read as the object it must be, so a malformed one is refused (exit 2), never a crash.
    data = store.read_blob(desc.digest)
    top = load_json_object(data, "index" if desc.media_type in INDEX_MEDIA_TYPES else "manifest", desc.digest)
    result: dict[str, object] = {
        "reference": image,
        "digest": desc.digest,
        "mediaType": desc.media_type,
        "annotations": top.get("annotations") or {},
        "document": top,
    }
    manifests = []
    entries = parse_index(data, where=desc.digest).manifests if "manifests" in top else ()
    for raw, entry in zip(top.get("manifests", ()), entries, strict=True):  # parse_index checked each
        manifest_data = store.read_blob(entry.digest)
        manifest = load_json_object(manifest_data, "manifest", entry.digest)
        config_digest = parse_manifest(manifest_data, where=entry.digest).config.digest
        config = load_json_object(store.read_blob(config_digest), "config", config_digest)
        manifests.append(
            {
                "platform": raw.get("platform"),
                "digest": entry.digest,
                "annotations": manifest.get("annotations") or {},
                "manifest": manifest,
                "config": config,
            }
        )
    if manifests:
        result["platforms"] = manifests
    stdout.print_json(json.dumps(result))


def export_command(
    image: Annotated[str, typer.Argument(help="A reference or digest in the local store.")],
    destination: Annotated[str, typer.Argument(help="oci-dir://PATH[:TAG] or docker-archive://FILE.tar")],
    platform: Annotated[
        str | None, typer.Option("--platform", help="Export one platform only (required for docker-archive).")
    ] = None,
    no_attestations: Annotated[
        bool,
        typer.Option(
            "--no-attestations",
            help="Leave out the signatures and attestations attached to the image (oci-dir:// carries "
            "them by default, so `bastion verify` works on the copy).",
        ),
    ] = False,
) -> None:
    """Export an image for other tools: an OCI layout directory (with its signatures and attestations),
    or a docker-archive tar (which cannot hold them)."""
    from bastion.oci import Scheme, Store, attachments, export_docker_archive, export_oci_dir

    source, target = image_ref("export", image), image_ref("export destination", destination)
    assert target.path is not None  # both destination schemes name a path (parse_image_ref)
    image = source.text
    store = Store(Settings.from_env().store_dir)
    if target.scheme is Scheme.oci_dir:
        if target.digest is not None:
            raise InputError("an export destination is named by a tag, not a digest", where=destination)
        path = target.path
        exported = export_oci_dir(
            store, image, path, target.tag, platform=platform, with_attachments=not no_attestations
        )
        desc = exported.descriptor
        if exported.platform_tags:
            first = exported.platform_tags[0]
            info(
                f"each platform is also tagged on its own, for tools that read one image (umoci unpack "
                f"--image {path}:{first}): {', '.join(exported.platform_tags)}"
            )
        if not no_attestations:
            info(f"{len(exported.attachments)} attached signatures and attestations exported with {image}")
    else:
        if not platform:
            raise InputError("docker-archive holds one platform: give --platform", where=destination)
        if target.tag is not None:
            raise InputError("a docker-archive export takes no :TAG", where=destination)
        desc = export_docker_archive(store, image, target.path, platform)
        if not no_attestations:
            left = len(attachments(store, store.resolve(image)))
            info(
                f"note: a docker-archive cannot carry signatures or attestations; {left} attached to "
                f"{image} were left out (export to oci-dir:// to keep them)"
            )
    stdout.print(desc.digest)


def register(app: typer.Typer) -> None:
    app.command("build")(build_command)
    app.command("images")(images_command)
    app.command("inspect")(inspect_command)
    app.command("export")(export_command)
