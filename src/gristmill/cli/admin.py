"""``gristmill secret ...``, ``gristmill store ...`` and ``gristmill info``."""

from __future__ import annotations

import importlib.metadata
import platform
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from gristmill.cli._groups import group
from gristmill.cli._output import console, escape, handles_errors, json_option, print_json, table
from gristmill.errors import ConfigError


def _project() -> Any:
    from gristmill.project import find_project

    return find_project()


def _values(pairs: tuple[str, ...]) -> dict[str, str]:
    """KEY=VALUE pairs of a secret: VALUE as written, ``@path`` reads a file, ``-`` stdin."""
    values: dict[str, str] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise ConfigError(
                "secret values are given as KEY=VALUE (KEY=@file reads a file, KEY=- stdin)"
            )
        if raw == "-":
            raw = sys.stdin.readline().rstrip("\n")
        elif raw.startswith("@"):
            try:
                raw = Path(raw[1:]).read_text(encoding="utf-8").rstrip("\n")
            except OSError as exc:
                raise ConfigError(
                    f"cannot read the value of '{key}' from {raw[1:]}: {exc.strerror}"
                ) from None
        values[key] = raw
    return values


@group()
def secret() -> None:
    """Secrets, encrypted at rest and referenced from settings as {{ secret.NAME.KEY }}."""


@secret.command("create")
@click.argument("name")
@click.argument("values", nargs=-1, metavar="KEY=VALUE...")
@handles_errors
def create_secret(name: str, values: tuple[str, ...]) -> None:
    """Create secret NAME (KEY=@file reads a file, KEY=- one line from stdin)."""
    _project().secrets().create(name, _values(values))
    console().print(
        f"Created secret [bold]{escape(name)}[/]: use it as {{{{ secret.{escape(name)}.KEY }}}}"
    )


@secret.command("update")
@click.argument("name")
@click.argument("values", nargs=-1, metavar="KEY=VALUE...")
@click.option("--remove", multiple=True, help="Remove a key (repeatable).")
@handles_errors
def update_secret(name: str, values: tuple[str, ...], remove: tuple[str, ...]) -> None:
    """Set or remove keys of secret NAME."""
    _project().secrets().update(name, _values(values), remove)
    console().print(f"Updated secret [bold]{escape(name)}[/]")


@secret.command("list")
@json_option
@handles_errors
def list_secrets(as_json: bool) -> None:
    """Secret names and keys (never values)."""
    records = _project().store().list_secrets()
    if as_json:
        print_json([{"name": r.name, "keys": r.keys, "updated_at": r.updated_at} for r in records])
        return
    rows = table("secret", "keys", "updated")
    for r in records:
        rows.add_row(
            r.name,
            ", ".join(r.keys),
            datetime.fromtimestamp(r.updated_at).strftime("%Y-%m-%d %H:%M"),
        )
    console().print(rows)


@secret.command("get")
@click.argument("name")
@click.option("--reveal", is_flag=True, help="Print the values (they are masked otherwise).")
@json_option
@handles_errors
def get_secret(name: str, reveal: bool, as_json: bool) -> None:
    """The keys of secret NAME; values only with --reveal."""
    values = _project().secrets().get(name)
    shown = {k: (v if reveal else "***") for k, v in sorted(values.items())}
    if as_json:
        # Written straight to stdout: the values are what was asked for.
        click.echo(__import__("json").dumps({"name": name, "values": shown}, indent=2))
        return
    for key, value in shown.items():
        click.echo(f"{key}={value}")


@secret.command("delete")
@click.argument("name")
@handles_errors
def delete_secret(name: str) -> None:
    """Delete secret NAME (components referring to it will fail to resolve)."""
    _project().secrets().delete(name)
    console().print(f"Deleted secret [bold]{escape(name)}[/]")


# -- the metadata store ---------------------------------------------------------------------------


@group()
def store() -> None:
    """Show or choose the project's metadata store."""


@store.command("show")
@json_option
@handles_errors
def show_store(as_json: bool) -> None:
    """The metadata store URL (password hidden), its schema and what it holds."""
    from gristmill.store.sql import safe_url

    project = _project()
    opened = project.store()
    info = {
        "url": safe_url(opened.url),
        "runs": opened.count_runs(),
        "stacks": len(opened.list_stacks()),
    }
    if as_json:
        print_json(info)
        return
    for key, value in info.items():
        console().print(f"  [bold]{key:<6}[/] {escape(str(value))}")


@store.command("set")
@click.argument("url")
@handles_errors
def set_store(url: str) -> None:
    """Use URL (a SQLAlchemy URL: postgresql+psycopg://user@host/db, sqlite:///path) for this
    project; the schema is created or migrated now. Passwords are better given through
    PGPASSWORD or ~/.pgpass than in the URL."""
    from gristmill.store import open_store
    from gristmill.store.sql import safe_url

    opened = open_store(url)
    opened.close()
    project = _project()
    project.init()
    project.save_settings(store_url=url)
    console().print(f"Metadata store: [bold]{escape(safe_url(url))}[/]")


@store.command("unset")
@handles_errors
def unset_store() -> None:
    """Go back to the embedded SQLite store under .gristmill/."""
    from gristmill.store import safe_url

    project = _project()
    project.save_settings(store_url=None)
    console().print(f"Metadata store: [bold]{escape(safe_url(project.store_url))}[/]")


# -- info ---------------------------------------------------------------------------------------

INTEGRATIONS = {
    "postgres": "psycopg",
    "s3": "s3fs",
    "gcs": "gcsfs",
    "azure": "adlfs",
    "numpy": "numpy",
    "pandas": "pandas",
    "pyarrow": "pyarrow",
    "sklearn": "scikit-learn",
}


@click.command()
@json_option
@handles_errors
def info(as_json: bool) -> None:
    """Version, project, metadata store, active stack and installed integrations."""
    from gristmill._version import __version__
    from gristmill.store.sql import safe_url

    project = _project()
    active = project.stack()
    integrations: dict[str, dict[str, str | None]] = {}
    for extra, package in INTEGRATIONS.items():
        try:
            integrations[extra] = {
                "package": package,
                "version": importlib.metadata.version(package),
            }
        except importlib.metadata.PackageNotFoundError:
            integrations[extra] = {"package": package, "version": None}
    data = {
        "gristmill": __version__,
        "python": platform.python_version(),
        "project": str(project.root),
        "store": safe_url(project.store_url),
        "stack": active.to_dict(),
        "integrations": integrations,
    }
    if as_json:
        print_json(data)
        return
    out = console()
    out.print(f"[bold]gristmill[/] {__version__} on Python {data['python']}")
    out.print(f"  [bold]project[/]  {escape(data['project'])}")
    out.print(f"  [bold]store[/]    {escape(data['store'])}")
    out.print(f"  [bold]stack[/]    {escape(active.name)}")
    for kind, member in active.components.items():
        settings = ", ".join(f"{k}={v}" for k, v in sorted(member.config.items()))
        out.print(f"    {kind:<18} {member.name} ({member.flavor}) {escape(settings)}")
    rows = table("integration", "package", "version", title="Integrations")
    for extra, item in integrations.items():
        rows.add_row(
            extra, item["package"], item["version"] or f'[dim]pip install "gristmill[{extra}]"[/]'
        )
    out.print(rows)
