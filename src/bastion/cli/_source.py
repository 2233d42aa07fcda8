"""``bastion source build``: rebuild a Debian source package (optionally patched) into Bastion's APT repository."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from bastion.cli._console import RichProgress, info, stdout

source_app = typer.Typer(
    name="source",
    help="Rebuild Debian source packages, patched, into Bastion's own signed APT repository.",
    no_args_is_help=True,
)


@source_app.command("build")
def build_command(
    definition: Annotated[
        Path, typer.Argument(help="A package definition (catalog/packages/NAME/NAME.yaml).")
    ],
    platform: Annotated[str, typer.Option("--platform", help="The platform to build for.")] = "linux/amd64",
    check: Annotated[
        bool,
        typer.Option(
            "--check", help="Build twice and refuse to publish unless the .deb files are identical."
        ),
    ] = False,
    key: Annotated[
        str | None,
        typer.Option(
            "--key",
            help="Sign the packages' provenance with this key (a cosign-format key file, file://PATH). "
            "Default: BASTION_HOME/keys/bastion.key, the key `bastion build` signs with.",
        ),
    ] = None,
) -> None:
    """Fetch the source through the verified chain, apply the definition's patches, build it in the sandbox
    and publish the packages to BASTION_HOME/repository (suite "bastion", signed with Bastion's archive key),
    with the build's SLSA provenance (signed with --key, else the default build key) and, when a patch
    fixes vulnerabilities, an OpenVEX document stating them fixed that `bastion cves` applies.

    Prints a JSON summary of what was built and published; progress goes to stderr."""
    from bastion.config import Settings
    from bastion.source import build_source

    with RichProgress() as progress:
        built = build_source(
            definition, Settings.from_env(), platform=platform, check=check, key=key, progress=progress
        )
    info(f"{built.source.name} {built.version}: {len(built.debs)} package(s) published to {built.repository.uri} "
         f"(suite bastion, key {built.repository.keyring})")  # fmt: skip
    summary = {
        "source": built.source.name,
        "debian-version": built.source.version,
        "version": built.version,
        "dsc": {"name": built.source.dsc.name, "sha256": built.source.dsc.sha256},
        "patches": [{"name": p.name, "sha256": p.sha256} for p in built.patches],
        "fixes": list(built.fixes),
        "build-root": built.build_root.digest,
        "packages": [{"name": d.name, "sha256": d.sha256, "size": d.size} for d in built.debs],
        "repository": {
            "uri": built.repository.uri,
            "suite": "bastion",
            "keyring": str(built.repository.keyring),
        },
        "reproducible": check or None,
        "proofs": [str(built.repository.root / name) for name in built.proofs],
    }
    stdout.print(json.dumps(summary, indent=2), markup=False, highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.add_typer(source_app)
