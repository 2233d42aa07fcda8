"""``bastion attest list|get`` and ``bastion verify``: the signed attestations attached to an image, read
from the local store, an ``oci-dir://`` layout or a registry (only the attestations are fetched, never
image layers). Verification is offline: the keys are files given on the command line."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bastion.cli._console import RichProgress, info, stdout
from bastion.cli._options import ImageArg, ImagePlatformOpt, image_ref
from bastion.cli._publish import CaFileOpt, InsecureOpt, registry_options
from bastion.config import Settings
from bastion.errors import InputError, VerificationFailed

if TYPE_CHECKING:
    from bastion.attest import Verifier

KeyOpt = Annotated[
    list[Path] | None,
    typer.Option(
        "--key",
        help="A trusted public key (PEM); repeat for several (any one may have signed). "
        "Default: BASTION_HOME/keys/bastion.pub, the key local builds sign with.",
        show_default=False,
    ),
]


class ListFormat(StrEnum):
    list = "list"
    json = "json"


class GetFormat(StrEnum):
    predicate = "predicate"
    statement = "statement"
    envelope = "envelope"


class VerifyFormat(StrEnum):
    text = "text"
    json = "json"


attest_app = typer.Typer(
    help="Signed attestations attached to an image (SBOMs, provenance, scan results).", no_args_is_help=True
)


@attest_app.command("list")
def list_command(
    image: ImageArg,
    platform: ImagePlatformOpt = None,
    output_format: Annotated[ListFormat, typer.Option("--format", help="Output format.")] = ListFormat.list,
    insecure: InsecureOpt = False,
    ca_file: CaFileOpt = None,
) -> None:
    """List the attestations of every platform of IMAGE (unverified: use 'attest get --verify' or
    'verify' to check them). Also lists cosign's legacy .att/.sig tags."""
    from bastion.attest import open_image, predicate_alias

    ref = image_ref("attest list", image)
    with open_image(ref, Settings.from_env(), registry_options(insecure, ca_file)) as source:
        targets = source.targets(platform)
        index = source.index_target()
        found = [a for t in ([index] if index else []) + targets for a in source.attestations(t)]
        top = source.top.digest
    if output_format is ListFormat.json:
        stdout.print_json(
            json.dumps({"reference": image, "digest": top, "attestations": [a.to_json() for a in found]})
        )
    else:
        from rich.table import Table

        table = Table("platform", "type", "format", "created", "key hint", "attestation", box=None)
        for a in found:
            table.add_row(
                a.platform or "(index)", predicate_alias(a.predicate_type) or "?", str(a.format), a.created or "-",
                a.key_hint or "-", a.manifest,
            )  # fmt: skip
        stdout.print(table)
    info(f"{len(found)} attestation(s) on {len(targets)} platform(s) of {image} ({top})")


@attest_app.command("get")
def get_command(
    image: ImageArg,
    predicate_type: Annotated[
        str,
        typer.Option(
            "--predicate-type",
            "--type",
            help="A predicate type URI, or spdx, cyclonedx (cdx), provenance (slsa), vex, cves, compliance, signature.",
            show_default=False,
        ),
    ],
    verify: Annotated[
        bool, typer.Option("--verify", help="Check signature and subject; fail (exit 1) unless one verifies.")
    ] = False,
    key: KeyOpt = None,
    platform: Annotated[
        str | None,
        typer.Option("--platform", help="Platform of a multi-platform image (default: the host's)."),
    ] = None,
    output_format: Annotated[
        GetFormat,
        typer.Option(
            "--format",
            help="predicate: the predicate JSON; statement: the whole in-toto statement; "
            "envelope: the bundle or DSSE envelope as stored.",
        ),
    ] = GetFormat.predicate,
    insecure: InsecureOpt = False,
    ca_file: CaFileOpt = None,
) -> None:
    """Print the newest attestation of one predicate type (with --verify: the newest that verifies).

    --key implies --verify. Only the attestation is fetched from a registry, never the image."""
    from bastion.attest import candidates_for, open_image, predicate_alias, resolve_predicate_type, select

    ref = image_ref("attest get", image)
    settings = Settings.from_env()
    wanted = resolve_predicate_type(predicate_type)
    verifier = _verifier(key, settings) if verify or key else None
    with open_image(ref, settings, registry_options(insecure, ca_file)) as source:
        target = source.targets(platform, host_default=True)[0]
        what = f"{image} ({target.platform or target.digest})"
        opened = select(candidates_for(source, target, wanted), wanted, verifier, what=what)
    if output_format is GetFormat.envelope:
        data = opened.envelope
    else:
        value = opened.predicate if output_format is GetFormat.predicate else opened.document
        data = json.dumps(value, indent=2, ensure_ascii=False).encode("utf-8")
    out = typer.get_binary_stream("stdout")
    out.write(data if data.endswith(b"\n") else data + b"\n")
    out.flush()
    state = "verified" if opened.verified else "NOT verified (no --verify)"
    info(f"{predicate_alias(wanted)} attestation {opened.attestation.manifest} of {target.digest}: {state}")


@attest_app.command("refresh")
def refresh_command(
    image: ImageArg,
    key: Annotated[
        str | None,
        typer.Option(
            "--key",
            help="Sign with this key (a cosign-format key file, file://PATH). "
            "Default: BASTION_HOME/keys/bastion.key, the key local builds sign with.",
            show_default=False,
        ),
    ] = None,
    only: Annotated[
        str | None,
        typer.Option(
            "--only",
            help="Only these predicate types, comma-separated (aliases as for 'attest get', e.g. cves,vex). "
            "Default: every one the image lacks that can be made without a build.",
            show_default=False,
        ),
    ] = None,
    definition: Annotated[
        Path | None,
        typer.Option(
            "--definition",
            help="The definition the image was built from: its vex: statements go into the OpenVEX document.",
            show_default=False,
        ),
    ] = None,
    platform: Annotated[
        str | None, typer.Option("--platform", help="Only this platform (default: every platform).")
    ] = None,
    output_format: Annotated[ListFormat, typer.Option("--format", help="Output format.")] = ListFormat.list,
) -> None:
    """Re-make, sign and attach the attestations of IMAGE (in the local store) that are missing for
    KEY or were made from other data: a new CVE scan and OpenVEX document when the vulnerability
    database changed. The image is not rebuilt; its digest stays. Prints each platform's digest and
    what was attached."""
    from bastion.attest import predicate_alias
    from bastion.pipeline import BuildSigner, default_producers, refresh

    settings = Settings.from_env()
    producers = default_producers()
    if only is not None:
        producers = producers.only(n.strip() for n in only.split(",") if n.strip())
    spec = None
    if definition is not None:
        from bastion.catalog import load_definition

        spec = load_definition(definition)
    with RichProgress() as progress:
        signer = BuildSigner(key, settings, progress)
        done = refresh(image, settings, signer, producers, platform=platform, definition=spec)
    if output_format is ListFormat.json:
        rows = [{"platform": r.platform, "digest": r.digest, "attached": list(r.attached)} for r in done]
        stdout.print_json(json.dumps({"reference": image, "platforms": rows}))
    else:
        for r in done:
            names = ",".join(predicate_alias(t) for t in r.attached) or "-"
            stdout.print(f"{r.platform} {r.digest} {names}", markup=False, highlight=False)
    count = sum(len(r.attached) for r in done)
    info(f"{count} attestation(s) attached to {len(done)} platform(s) of {image}")


def verify_command(
    image: ImageArg,
    key: KeyOpt = None,
    predicate_types: Annotated[
        list[str] | None,
        typer.Option(
            "--predicate-type",
            "--type",
            help="A predicate type that must be attested and verify (URI or alias); repeatable. "
            "Default: spdx, cyclonedx, provenance.",
            show_default=False,
        ),
    ] = None,
    platform: ImagePlatformOpt = None,
    policy_file: Annotated[
        Path | None,
        typer.Option(
            "--policy",
            help="A YAML policy: required attestations, allowed keys, conditions on signed predicate fields.",
            show_default=False,
        ),
    ] = None,
    output_format: Annotated[
        VerifyFormat, typer.Option("--format", help="Output format.")
    ] = VerifyFormat.text,
    insecure: InsecureOpt = False,
    ca_file: CaFileOpt = None,
) -> None:
    """Check that every required attestation is attached to every platform of IMAGE, signed by a
    trusted key and about that very image, and (with --policy) that the policy's conditions hold;
    exit 1 otherwise. Offline and fail-closed. Prints what was found, what verified, and why not."""
    from bastion.attest import (
        DEFAULT_REQUIRED,
        open_image,
        predicate_alias,
        resolve_predicate_type,
        verify_image,
    )
    from bastion.policy import evaluate_conditions, load_policy

    ref = image_ref("verify", image)
    settings = Settings.from_env()
    policy = load_policy(policy_file) if policy_file is not None else None
    if policy is not None and policy.policy.keys and key:
        raise InputError(
            "give the allowed keys in the policy or with --key, not both", where=str(policy_file)
        )
    required = (
        [resolve_predicate_type(t) for t in predicate_types] if predicate_types else list(DEFAULT_REQUIRED)
    )
    if policy is not None:
        required = list(
            dict.fromkeys(
                [*policy.predicate_types(resolve_predicate_type), *(required if predicate_types else [])]
            )
        )
    verifier = _verifier(policy.key_files if policy is not None and policy.policy.keys else key, settings)
    with open_image(ref, settings, registry_options(insecure, ca_file)) as source:
        report = verify_image(source, verifier, required, platform=platform)
    if not report.checks:  # fail closed: a verification that checked nothing has not passed
        raise VerificationFailed("nothing was verified: no platform of the image to check", where=image)
    conditions = []
    if policy is not None and policy.policy.conditions:
        verified = {
            (c.platform, c.predicate_type): (c.verified.predicate if c.verified is not None else None)
            for c in report.checks
        }
        platforms = list(dict.fromkeys(c.platform for c in report.checks))
        conditions = evaluate_conditions(
            policy.policy.conditions, verified, platforms, resolve_predicate_type
        )
    if output_format is VerifyFormat.json:
        document = report.to_json()
        document["conditions"] = [
            {"platform": c.platform, "condition": c.condition, "holds": c.ok, "reason": c.reason}
            for c in conditions
        ]
        stdout.print_json(json.dumps(document))
    else:
        stdout.print(f"{image} {report.digest}", markup=False)
        for check in report.checks:
            name = predicate_alias(check.predicate_type)
            if check.verified is not None:
                att = check.verified.attestation
                line = f"  {check.platform or '-'} {name}: verified ({att.format}, {att.manifest}; {check.found} found)"
            else:
                line = f"  {check.platform or '-'} {name}: FAILED ({check.found} found): {check.reason}"
            stdout.print(line, markup=False)
        for result in conditions:
            verdict = "holds" if result.ok else f"FAILED: {result.reason}"
            stdout.print(f"  {result.platform or '-'} policy {result.condition}: {verdict}", markup=False)
    broken = [c for c in conditions if not c.ok]
    if broken and report.ok:
        first_condition = broken[0]
        raise VerificationFailed(
            f"{len(broken)} policy condition(s) do not hold; first: {first_condition.platform} "
            f"{first_condition.condition}: {first_condition.reason}",
            where=image,
        )
    failed = [c for c in report.checks if not c.ok]
    if failed:
        first = failed[0]
        raise VerificationFailed(
            f"{len(failed)} of {len(report.checks)} required attestations did not verify; first: "
            f"{first.platform or first.subject} {predicate_alias(first.predicate_type)}: {first.reason}",
            where=image,
        )
    info(f"{image}: {len(report.checks)} attestations verified")


def _verifier(keys: list[Path] | None, settings: Settings) -> Verifier:
    from bastion.attest import Verifier, local_key_path

    if not keys:
        default = local_key_path(settings.home).with_suffix(".pub")
        if not default.is_file():
            raise InputError(
                "verification needs a public key",
                hint=f"give --key PUB ({default}, the local build key, does not exist)",
            )
        info(f"verifying with the local build key {default}")
        keys = [default]
    for path in keys:
        if not path.is_file():
            raise InputError("no such public key file", where=str(path))
    return Verifier.from_files(keys)


def register(app: typer.Typer) -> None:
    app.add_typer(attest_app, name="attest")
    app.command("verify")(verify_command)
