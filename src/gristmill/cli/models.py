"""``gristmill models list/versions/show/promote/delete/register`` (``gristmill model`` too)."""

from __future__ import annotations

from typing import Any

import click

from gristmill.cli._groups import group
from gristmill.cli._output import (
    DISPLAY_CHARS,
    console,
    escape,
    handles_errors,
    json_option,
    print_json,
    table,
    when,
)


def _client() -> Any:
    from gristmill.client import Client

    return Client()


def _version_arg(value: str) -> str | int:
    return int(value) if value.isdigit() else value


def _metrics(metadata: dict[str, Any], limit: int = 4) -> str:
    shown = [
        f"{k}={format(v, '.4g') if isinstance(v, float) else v}"
        for k, v in metadata.items()
        if isinstance(v, (int, float, str, bool))
    ]
    text = ", ".join(shown[:limit])
    return text + (f" (+{len(shown) - limit})" if len(shown) > limit else "") if text else "-"


@group()
def models() -> None:
    """Models of the registry: their versions, stages and artifacts."""


@models.command("list")
@json_option
@handles_errors
def list_models(as_json: bool) -> None:
    """Every model, with its number of versions and the versions in staging and production."""
    found = _client().list_models()
    if as_json:
        print_json(
            [
                {
                    **m.to_dict(),
                    "production": _stage_label(m.stage("production")),
                    "staging": _stage_label(m.stage("staging")),
                }
                for m in found
            ]
        )
        return
    listing = table("model", "versions", "production", "staging", "description")
    for m in found:
        listing.add_row(
            escape(m.name, lines=False),
            str(m.version_count),
            escape(_stage_label(m.stage("production")) or "-", lines=False),
            escape(_stage_label(m.stage("staging")) or "-", lines=False),
            escape(m.description or "-", lines=False, limit=60),
        )
    console().print(listing)


def _stage_label(version: Any) -> str | None:
    return None if version is None else version.version


@models.command("versions")
@click.argument("name")
@click.option("--stage", help="Only versions in this stage.")
@json_option
@handles_errors
def list_versions(name: str, stage: str | None, as_json: bool) -> None:
    """The versions of model NAME, newest first, with their stage and metrics."""
    client = _client()
    model = client.get_model(name)
    versions = model.versions
    if stage is not None:
        versions = [v for v in versions if (v.stage or "none") == stage]
    if as_json:
        print_json([v.to_dict() for v in versions])
        return
    listing = table("version", "number", "stage", "metadata", "created", "run")
    for v in versions:
        run = v.run
        listing.add_row(
            escape(v.version, lines=False),
            str(v.number),
            escape(v.stage or "-", lines=False),
            escape(_metrics(v.metadata), lines=False, limit=80),
            when(v.created_at),
            escape(run.name if run else "-", lines=False),
        )
    console().print(listing)


@models.command("show")
@click.argument("name")
@click.argument("version", required=False, default="latest")
@json_option
@handles_errors
def show_version(name: str, version: str, as_json: bool) -> None:
    """One version of model NAME (a number, stage, name or 'latest', the default): its
    stage and history, metadata, artifacts and the run that created it."""
    found = _client().get_model_version(name, _version_arg(version))
    if as_json:
        data = found.to_dict()
        data["model"] = found.model.to_dict()
        print_json(data)
        return
    out = console()
    run = found.run
    out.print(
        f"[bold]{escape(found.name, lines=False)}[/] version "
        f"[bold]{escape(found.version, lines=False)}[/] (number {found.number})  "
        f"[dim]id {escape(found.id)}[/]"
    )
    rows = [
        ("stage", found.stage or "-"),
        ("created", when(found.created_at)),
        ("run", run.name if run else "-"),
        ("description", found.model.description or "-"),
        ("tags", ", ".join(found.tags) or "-"),
    ]
    for key, value in rows:
        out.print(f"  [bold]{key:<12}[/] {escape(value, lines=False, limit=DISPLAY_CHARS)}")
    if found.metadata:
        out.print("  [bold]metadata[/]")
        for key, value in found.metadata.items():
            out.print(
                f"    {escape(key, lines=False)} = {escape(value, lines=False, limit=DISPLAY_CHARS)}"
            )
    kinds = found.artifact_kinds()
    if kinds:
        out.print("  [bold]artifacts[/]")
        for artifact_name, artifact in found.artifacts.items():
            out.print(
                f"    {escape(artifact_name, lines=False)}:{artifact.version} "
                f"[dim]{escape(kinds.get(artifact_name, 'data'))} {escape(artifact.id[:12])}[/]"
            )
    history = found.stage_history
    if history:
        out.print("  [bold]stage history[/]")
        for change in history:
            note = f" ({change.note})" if change.note else ""
            out.print(
                f"    {escape(change.previous_stage or 'none')} → "
                f"{escape(change.stage or 'none')} by {escape(change.user, lines=False)} at "
                f"{when(_epoch(change.at))}{escape(note, lines=False)}"
            )


def _epoch(at: float) -> Any:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(at, timezone.utc)


@models.command("promote")
@click.argument("name")
@click.argument("version")
@click.argument(
    "stage", type=click.Choice(["staging", "production", "archived", "none"]), default="production"
)
@click.option(
    "--force", is_flag=True, help="Archive the version now in that stage instead of refusing."
)
@click.option("--note", help="Why, recorded in the stage history.")
@json_option
@handles_errors
def promote(
    name: str, version: str, stage: str, force: bool, note: str | None, as_json: bool
) -> None:
    """Move VERSION of model NAME to STAGE (production by default), recording who and when
    (GRISTMILL_USER or the OS user)."""
    found = _client().get_model_version(name, _version_arg(version))
    found.set_stage(stage, force=force, note=note)
    if as_json:
        print_json(found.to_dict())
        return
    console().print(
        f"{escape(name, lines=False)} version {escape(found.version, lines=False)} is now in "
        f"{escape(stage)}"
    )


@models.command("delete")
@click.argument("name")
@click.argument("version", required=False)
@click.option("--force", is_flag=True, help="Delete even a version in production.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@json_option
@handles_errors
def delete(name: str, version: str | None, force: bool, yes: bool, as_json: bool) -> None:
    """Delete VERSION of model NAME, or the whole model with all its versions when VERSION
    is left out. Refused for a version in production unless --force. The artifact versions
    stay (they belong to their runs)."""
    client = _client()
    what = (
        f"model '{name}' and all its versions" if version is None else (f"{name} version {version}")
    )
    if not yes and not as_json:
        click.confirm(f"delete {what}?", abort=True)
    if version is None:
        deleted = client.delete_model(name, force=force)
        labels = [v.version for v in deleted]
    else:
        labels = [client.delete_model_version(name, _version_arg(version), force=force).version]
    if as_json:
        print_json({"model": name, "deleted_versions": labels, "model_deleted": version is None})
        return
    console().print(f"deleted {escape(what, lines=False)}")


@models.command("register")
@click.argument("name")
@click.option("--description", help="What the model is for.")
@click.option("--license", "license_", help="The model's license.")
@click.option("--tag", "tags", multiple=True, help="A tag (repeatable).")
@click.option(
    "--artifact",
    "artifacts",
    multiple=True,
    help="Create a version from this artifact version (NAME:VERSION or id), linked as a model "
    "artifact (repeatable; KIND=REF for data= or deployment=).",
)
@click.option("--version", "version_name", help="A name for the new version (e.g. 'rf').")
@click.option("--stage", type=click.Choice(["staging", "production", "archived"]))
@json_option
@handles_errors
def register(
    name: str,
    description: str | None,
    license_: str | None,
    tags: tuple[str, ...],
    artifacts: tuple[str, ...],
    version_name: str | None,
    stage: str | None,
    as_json: bool,
) -> None:
    """Register model NAME (or update its description, license, tags); with --artifact,
    also create a version of it from existing artifact versions."""
    client = _client()
    model = client.create_model(name, description=description, license=license_, tags=list(tags))
    if not artifacts:
        if version_name or stage:
            raise click.UsageError("--version and --stage need --artifact (what the version is)")
        if as_json:
            print_json(model.to_dict())
        else:
            console().print(f"registered model {escape(name, lines=False)}")
        return
    links: dict[str, str] = {}
    for item in artifacts:
        kind, sep, ref = item.partition("=")
        if not sep:
            kind, ref = "model", item
        if kind not in ("model", "data", "deployment"):
            raise click.UsageError(f"--artifact {item!r}: the kind is model=, data= or deployment=")
        links[ref] = kind
    version = client.create_model_version(name, artifacts=links, version=version_name)
    if stage:
        version.set_stage(stage)
    if as_json:
        print_json(version.to_dict())
        return
    console().print(
        f"registered {escape(name, lines=False)} version {escape(version.version, lines=False)}"
        + (f" in {escape(stage)}" if stage else "")
    )
