"""``gristmill connect URL`` and ``gristmill disconnect``: record through a gristmill server
instead of a database. The URL and token go to the user's config file (0600); the token is
never printed."""

from __future__ import annotations

import os

import click

from gristmill.cli._output import console, escape, handles_errors, json_option, print_json


@click.command()
@click.argument("url")
@click.option(
    "--token",
    help="An API token (`gristmill token create` on the server). Default: "
    "GRISTMILL_API_TOKEN, else a hidden prompt; a prompt keeps it out of shell history.",
)
@json_option
@handles_errors
def connect(url: str, token: str | None, as_json: bool) -> None:
    """Record through the gristmill server at URL: the Client, the CLI and pipeline runs use
    it instead of a database (GRISTMILL_STORE_URL still wins). The token is checked with the
    server before it is saved in ~/.config/gristmill/connection.json (mode 0600)."""
    from gristmill.store.rest import RestStore
    from gristmill.store.rest.connection import TOKEN_VARIABLE, normalize_url, save_connection

    url = normalize_url(url)
    token = token or os.environ.get(TOKEN_VARIABLE)
    if not token:
        token = click.prompt(f"API token for {url}", hide_input=True).strip()
    store = RestStore(url, token)
    try:
        info = store.server_info()
    finally:
        store.close()
    path = save_connection(url, token)
    result = {
        "url": url,
        "user": info.get("user"),
        "role": info.get("role"),
        "server": info.get("gristmill"),
        "config": str(path),
    }
    if as_json:
        print_json(result)
        return
    out = console()
    out.print(
        f"Connected to [bold]{escape(url)}[/] as [bold]{escape(str(result['user']))}[/] "
        f"({escape(str(result['role']))}), gristmill {escape(str(result['server']))}"
    )
    out.print(f"  saved in {escape(str(path))} (mode 0600)")
    if os.environ.get("GRISTMILL_STORE_URL"):
        out.print(
            "  [yellow]GRISTMILL_STORE_URL is set in this shell and wins over the connection[/]"
        )
    out.print("  runs, the CLI and Client() now record through the server; `gristmill disconnect`")


@click.command()
@handles_errors
def disconnect() -> None:
    """Forget the server `gristmill connect` saved: record into the project's own store again."""
    from gristmill.store.rest.connection import connection_file, remove_connection

    found = remove_connection()
    if found is None:
        console().print(f"Not connected (no {escape(str(connection_file()))})")
        return
    console().print(f"Disconnected from [bold]{escape(found.url)}[/]")
