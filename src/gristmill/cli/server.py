"""``gristmill up`` (a local server on this project), ``gristmill server start`` (the
production command), ``gristmill user ...`` and ``gristmill token ...``. User and token
commands work on the metadata store directly, so they run on the server host (or wherever
the store's database is reachable); the server extra is imported only when a command runs."""

from __future__ import annotations

import getpass
import os
import socket
import sys
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

import click

from gristmill.cli._groups import group
from gristmill.cli._output import console, escape, handles_errors, json_option, print_json, table
from gristmill.errors import ConfigError

if TYPE_CHECKING:
    from gristmill.server.settings import ServerSettings
    from gristmill.store import MetadataStore
    from gristmill.store.records import ApiTokenRecord

DEFAULT_PORT = 8237
ROLES = ("viewer", "editor", "admin")


def _store_url(explicit: str | None = None) -> str:
    from gristmill.project import find_project

    url = explicit or os.environ.get("GRISTMILL_STORE_URL")
    if url is None:
        project = find_project()
        project.check_readable()
        url = project.store_url
    if url.startswith(("http://", "https://")):
        raise ConfigError(
            f"the store is a gristmill server ({url}): users, tokens and the server itself work "
            "on the server's database. Run this on the server host, or pass its database with "
            "--store-url (e.g. postgresql+psycopg://...)"
        )
    return url


def _open(explicit: str | None = None) -> MetadataStore:
    from gristmill.server import require_server_extra
    from gristmill.store import open_store

    require_server_extra("managing server users and tokens")
    return open_store(_store_url(explicit))


def _when(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    return datetime.fromtimestamp(epoch).strftime("%Y-%m-%d %H:%M")


def _read_password(password_stdin: bool, *, prompt: str = "Password") -> str:
    """From stdin (one line) or a prompt asked twice."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise ConfigError("--password-stdin: no password on stdin (one line expected)")
        return password
    return str(click.prompt(prompt, hide_input=True, confirmation_prompt=True))


# -- gristmill user ---------------------------------------------------------------------------------

store_url_option = click.option(
    "--store-url",
    help="The server's metadata store (default: this project's) [env: GRISTMILL_STORE_URL].",
)


@group()
def user() -> None:
    """Server users: create (password from a prompt or --password-stdin), list, set-role, delete."""


@user.command("create")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), default="viewer", show_default=True)
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin (one line).")
@store_url_option
@handles_errors
def create_user(name: str, role: str, password_stdin: bool, store_url: str | None) -> None:
    """Create user NAME with a role; the password is asked twice (or read from stdin)."""
    from gristmill.server.credentials import check_password, check_user_name, create_user

    check_user_name(name)
    store = _open(store_url)
    try:
        store.get_user(name)
    except LookupError:
        pass
    else:
        raise ConfigError(
            f"a user named '{name}' exists already; change its role with "
            f"`gristmill user set-role {name} ROLE` or its password with "
            f"`gristmill user set-password {name}`"
        )
    password = check_password(_read_password(password_stdin))
    create_user(store, name, role=role, password=password)
    console().print(f"Created user [bold]{escape(name)}[/] ({role})")


@user.command("list")
@store_url_option
@json_option
@handles_errors
def list_users(store_url: str | None, as_json: bool) -> None:
    """Every user with their role (never a password or hash)."""
    records = _open(store_url).list_users()
    if as_json:
        print_json(
            [
                {
                    "name": u.name,
                    "role": u.role,
                    "disabled": u.disabled,
                    "created_at": u.created_at,
                    "updated_at": u.updated_at,
                }
                for u in records
            ]
        )
        return
    rows = table("user", "role", "disabled", "created")
    for u in records:
        rows.add_row(escape(u.name), u.role, "yes" if u.disabled else "", _when(u.created_at))
    console().print(rows)


def _refuse_last_admin(store: MetadataStore, name: str) -> None:
    admins = [u.name for u in store.list_users() if u.role == "admin" and not u.disabled]
    if admins == [name]:
        raise ConfigError(
            f"'{name}' is the only admin: make another user admin first "
            "(`gristmill user set-role NAME admin`), so someone can still manage users"
        )


@user.command("set-role")
@click.argument("name")
@click.argument("role", type=click.Choice(ROLES))
@store_url_option
@handles_errors
def set_role(name: str, role: str, store_url: str | None) -> None:
    """Give user NAME another role (their tokens are capped to it at once)."""
    store = _open(store_url)
    if store.get_user(name).role == "admin" and role != "admin":
        _refuse_last_admin(store, name)
    store.update_user(name, role=role, at=time.time())
    console().print(f"User [bold]{escape(name)}[/] is now {role}")


@user.command("set-password")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin (one line).")
@store_url_option
@handles_errors
def set_password(name: str, password_stdin: bool, store_url: str | None) -> None:
    """Set user NAME's password (ends their dashboard sessions)."""
    from gristmill.server.credentials import check_password, hash_password

    store = _open(store_url)
    store.get_user(name)
    password = check_password(_read_password(password_stdin, prompt="New password"))
    store.update_user(name, password_hash=hash_password(password), at=time.time())
    console().print(f"Changed the password of [bold]{escape(name)}[/]; their sessions ended")


@user.command("delete")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@store_url_option
@handles_errors
def delete_user(name: str, yes: bool, store_url: str | None) -> None:
    """Delete user NAME with their tokens and sessions."""
    store = _open(store_url)
    if store.get_user(name).role == "admin":
        _refuse_last_admin(store, name)
    if not yes:
        click.confirm(f"Delete user '{name}' and all their tokens?", abort=True)
    store.delete_user(name)
    console().print(f"Deleted user [bold]{escape(name)}[/]")


# -- gristmill token --------------------------------------------------------------------------------


def _token_owner(store: MetadataStore, explicit: str | None) -> str:
    """--user, else the user named like this login, else the only user, else the only admin."""
    if explicit:
        store.get_user(explicit)
        return explicit
    users = store.list_users()
    names = {u.name for u in users}
    login = getpass.getuser()
    if login in names:
        return login
    if len(users) == 1:
        return users[0].name
    admins = [u.name for u in users if u.role == "admin"]
    if len(admins) == 1:
        return admins[0]
    if not users:
        raise ConfigError(
            "there are no users yet: create the first admin with "
            "`gristmill user create NAME --role admin`"
        )
    raise ConfigError(
        f"whose token? no user is named '{login}' (this login) and there is not exactly one "
        "admin: pass --user NAME"
    )


def _token_json(record: ApiTokenRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "user": record.user,
        "name": record.name,
        "role": record.role,
        "created_at": record.created_at,
        "expires_at": record.expires_at,
        "last_used_at": record.last_used_at,
        "revoked_at": record.revoked_at,
    }


@group()
def token() -> None:
    """API tokens for clients and CI: create (shown once), list, revoke."""


@token.command("create")
@click.option("--name", required=True, help="What the token is for (e.g. ci, laptop).")
@click.option(
    "--user",
    "user_name",
    help="Whose token (default: this login's user, the only user, or the only admin).",
)
@click.option("--role", type=click.Choice(ROLES), help="At most the user's role (default: it).")
@click.option("--expires", help="Lifetime: 30d, 12h, 90m, 2w (default: never).")
@store_url_option
@json_option
@handles_errors
def create_token(
    name: str,
    user_name: str | None,
    role: str | None,
    expires: str | None,
    store_url: str | None,
    as_json: bool,
) -> None:
    """Create an API token; it is printed once and cannot be shown again."""
    from gristmill.server.credentials import create_token, parse_duration

    expires_in = parse_duration(expires) if expires else None
    store = _open(store_url)
    owner = _token_owner(store, user_name)
    secret, record = create_token(store, owner, name=name, role=role, expires_in=expires_in)
    if as_json:
        print_json({**_token_json(record), "token": secret})
        return
    click.echo(secret)
    expiry = f", expires {_when(record.expires_at)}" if record.expires_at else ""
    console(stderr=True).print(
        f"Created token [bold]{escape(name)}[/] for {escape(owner)} ({record.role}{expiry}), "
        f"id {record.id[:8]}. Copy it now: it is not shown again. Use it as "
        "GRISTMILL_API_TOKEN or `Authorization: Bearer TOKEN`."
    )


@token.command("list")
@click.option("--user", "user_name", help="Only this user's tokens.")
@click.option("--revoked", is_flag=True, help="Include revoked tokens.")
@store_url_option
@json_option
@handles_errors
def list_tokens(user_name: str | None, revoked: bool, store_url: str | None, as_json: bool) -> None:
    """Tokens (never the tokens themselves): id, user, name, role, expiry, last use."""
    records = _open(store_url).list_api_tokens(user=user_name, include_revoked=revoked)
    if as_json:
        print_json([_token_json(r) for r in records])
        return
    rows = table("id", "user", "name", "role", "created", "expires", "last used", "revoked")
    for r in records:
        rows.add_row(
            r.id[:8],
            escape(r.user),
            escape(r.name),
            r.role,
            _when(r.created_at),
            _when(r.expires_at),
            _when(r.last_used_at),
            _when(r.revoked_at) if r.revoked_at else "",
        )
    console().print(rows)


@token.command("revoke")
@click.argument("token_id")
@store_url_option
@handles_errors
def revoke_token(token_id: str, store_url: str | None) -> None:
    """Revoke the token with this id (or unique id prefix): it stops working at once."""
    record = _open(store_url).revoke_api_token(token_id, time.time())
    console().print(
        f"Revoked token [bold]{escape(record.name)}[/] of {escape(record.user)} ({record.id[:8]})"
    )


# -- running the server -----------------------------------------------------------------------------


def _check_port_free(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ConfigError(
                f"cannot listen on {host}:{port}: {exc.strerror or exc}; another server may be "
                "running there: stop it or pick another port with --port"
            ) from None


def _serve(
    settings: ServerSettings,
    *,
    host: str,
    port: int,
    workers: int,
    forwarded_allow_ips: str | None,
    log_level: str,
) -> None:
    import uvicorn

    from gristmill.server.settings import SETTINGS_ENV

    os.environ[SETTINGS_ENV] = settings.to_environment()
    uvicorn.run(
        "gristmill.server.app:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers if workers > 1 else None,
        proxy_headers=forwarded_allow_ips is not None,
        forwarded_allow_ips=forwarded_allow_ips,
        server_header=False,
        log_level=log_level,
    )


def _prepare_store(url: str, *, interactive: bool) -> bool:
    """Open (and migrate) the store once before workers start; say how to create the first
    user when there is none (or create an admin now, on a terminal). True if users exist."""
    from gristmill.server import require_server_extra
    from gristmill.store import open_store

    require_server_extra()
    store = open_store(url)
    try:
        if store.list_users():
            return True
        if interactive and click.confirm(
            "No user can log in yet. Create an admin now?", default=True, err=True
        ):
            from gristmill.server.credentials import check_password, check_user_name, create_user

            name = check_user_name(
                str(click.prompt("Admin user name", default=getpass.getuser(), err=True))
            )
            password = check_password(_read_password(False))
            create_user(store, name, role="admin", password=password)
            console(stderr=True).print(f"Created admin [bold]{escape(name)}[/]")
            return True
        console(stderr=True).print(
            "[yellow]No user can log in yet.[/] Create the first admin with "
            "`gristmill user create NAME --role admin`, then a token with "
            "`gristmill token create --name NAME`."
        )
        return False
    finally:
        store.close()


@click.command("up")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=int)
@click.option("--log-level", default="warning", show_default=True)
@handles_errors
def up(host: str, port: int, log_level: str) -> None:
    """Serve this project's runs (API and dashboard) on a local server; prints the URL."""
    from gristmill.project import find_project
    from gristmill.server import require_server_extra
    from gristmill.server.settings import ServerSettings

    require_server_extra("`gristmill up`")
    project = find_project()
    project.check_readable()
    url = _store_url()
    _check_port_free(host, port)
    _prepare_store(url, interactive=sys.stdin.isatty() and sys.stderr.isatty())
    settings = ServerSettings(store_url=url, project=project.root)
    shown = f"[{host}]" if ":" in host else host
    console(stderr=True).print(
        f"gristmill server for {escape(str(project.root))} on [bold]http://{shown}:{port}[/] "
        "(Ctrl-C stops it)"
    )
    _serve(settings, host=host, port=port, workers=1, forwarded_allow_ips=None, log_level=log_level)


@group()
def server() -> None:
    """Run the gristmill server (production: `gristmill server start`)."""


@server.command("start")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 256))
@store_url_option
@click.option(
    "--artifact-store", help="Where artifacts are read from when a run's stack does not say."
)
@click.option(
    "--secure-cookies/--no-secure-cookies",
    default=None,
    help="Mark session cookies Secure (default: on when --forwarded-allow-ips is given).",
)
@click.option(
    "--forwarded-allow-ips",
    help="Trust X-Forwarded-For/-Proto from these proxy addresses (comma-separated, or '*').",
)
@click.option("--session-hours", type=float, default=12.0, show_default=True)
@click.option("--log-level", default="info", show_default=True)
@handles_errors
def start(
    host: str,
    port: int,
    workers: int,
    store_url: str | None,
    artifact_store: str | None,
    secure_cookies: bool | None,
    forwarded_allow_ips: str | None,
    session_hours: float,
    log_level: str,
) -> None:
    """Start the server: uvicorn with N workers over the store (PostgreSQL for a team)."""
    from gristmill.server import require_server_extra
    from gristmill.server.settings import ServerSettings

    require_server_extra("`gristmill server start`")
    url = _store_url(store_url)
    if workers > 1 and url.startswith("sqlite"):
        console(stderr=True).print(
            "[yellow]warning:[/] several workers on a SQLite store take turns to write; "
            "use PostgreSQL for a shared server"
        )
    _check_port_free(host, port)
    _prepare_store(url, interactive=False)
    from gristmill.project import find_project

    found = find_project()
    project = found.root if found.exists else None
    settings = ServerSettings(
        store_url=url,
        project=project,
        artifact_store=artifact_store,
        secure_cookies=secure_cookies
        if secure_cookies is not None
        else forwarded_allow_ips is not None,
        session_lifetime=session_hours * 3600,
    )
    console(stderr=True).print(
        f"gristmill server on http://{host}:{port} with {workers} worker(s)"
        + (" (cookies Secure)" if settings.secure_cookies else "")
    )
    _serve(
        settings,
        host=host,
        port=port,
        workers=workers,
        forwarded_allow_ips=forwarded_allow_ips,
        log_level=log_level,
    )
