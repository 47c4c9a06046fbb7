"""Where ``gristmill connect`` keeps the server this user records to: one small JSON file,
``$XDG_CONFIG_HOME/gristmill/connection.json`` (``~/.config/gristmill/`` by default), mode
0600, holding the server's URL and the API token. The environment wins over the file:
``GRISTMILL_STORE_URL`` and ``GRISTMILL_API_TOKEN`` (DESIGN.md §5). Nothing here prints or
logs a token."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from gristmill.errors import ConfigError

TOKEN_VARIABLE = "GRISTMILL_API_TOKEN"
CONFIG_HOME_VARIABLE = "XDG_CONFIG_HOME"
FILE_NAME = "connection.json"


@dataclass(frozen=True)
class Connection:
    url: str
    token: str

    def __repr__(self) -> str:  # never show the token
        return f"Connection(url={self.url!r}, token='***')"


def config_directory() -> Path:
    base = os.environ.get(CONFIG_HOME_VARIABLE)
    root = Path(base).expanduser() if base else Path.home() / ".config"
    return root / "gristmill"


def connection_file() -> Path:
    return config_directory() / FILE_NAME


def normalize_url(url: str) -> str:
    """A server URL as the file and the store keep it: no trailing slash, no ``/api/v1``."""
    url = url.strip().rstrip("/")
    if url.endswith("/api/v1"):
        url = url[: -len("/api/v1")]
    if not url.startswith(("http://", "https://")):
        raise ConfigError(
            f"'{url}' is not a server URL: give http://HOST:PORT or https://HOST "
            "(the URL `gristmill up` printed)"
        )
    return url


def load_connection() -> Connection | None:
    """The saved connection, or None when this user never connected (or disconnected)."""
    path = connection_file()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"cannot read {path} ({exc}); fix its permissions or delete it") from exc
    try:
        data = json.loads(text)
        return Connection(url=str(data["url"]), token=str(data["token"]))
    except (ValueError, KeyError, TypeError):
        raise ConfigError(
            f"{path} is not a gristmill connection file; delete it or run "
            "`gristmill connect URL` again"
        ) from None


def save_connection(url: str, token: str) -> Path:
    """Write the connection file (0600 whatever the umask: it holds a token)."""
    directory = config_directory()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = directory / FILE_NAME
    temporary = path.with_suffix(f".{os.getpid()}.tmp")
    temporary.unlink(missing_ok=True)
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(json.dumps({"url": normalize_url(url), "token": token}, indent=2) + "\n")
    temporary.replace(path)
    return path


def remove_connection() -> Connection | None:
    """Delete the connection file; the connection it held, or None if there was none."""
    found = load_connection()
    connection_file().unlink(missing_ok=True)
    return found


def connected_url() -> str | None:
    """The server URL this user connected to, if any (the file's; the environment's
    GRISTMILL_STORE_URL is the caller's to check first)."""
    found = load_connection()
    return found.url if found is not None else None


def token_for(url: str) -> str | None:
    """The token for a server URL: GRISTMILL_API_TOKEN, else the saved connection's when it
    is for the same server."""
    token = os.environ.get(TOKEN_VARIABLE)
    if token:
        return token
    found = load_connection()
    if found is not None and found.url == normalize_url(url):
        return found.token
    return None
