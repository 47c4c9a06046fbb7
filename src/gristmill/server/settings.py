"""``ServerSettings``: everything one server process needs (the metadata store, the artifact
store, cookie and login-limit settings). Plain pydantic, no FastAPI: the CLI builds it, and
worker processes started by uvicorn read it back from ``GRISTMILL_SERVER_SETTINGS``."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from gristmill.errors import ConfigError

__all__ = ["SETTINGS_ENV", "ServerSettings"]

# How `gristmill server start --workers N` hands the settings to uvicorn's worker processes.
SETTINGS_ENV = "GRISTMILL_SERVER_SETTINGS"


class ServerSettings(BaseModel):
    """The settings of one gristmill server.

    ``store_url``: the metadata store (the project's SQLite file for ``gristmill up``,
    PostgreSQL for a shared server). ``artifact_store``: where artifacts are read from when a
    run's recorded stack does not say (None: the project's, if any). ``secure_cookies``: mark
    the session cookies ``Secure`` (True whenever users reach the server over HTTPS, e.g.
    behind a TLS proxy)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    store_url: str
    project: Path | None = None
    artifact_store: str | None = None
    secure_cookies: bool = False
    # A dashboard session lasts this long after login (seconds), then the user logs in again.
    session_lifetime: float = Field(default=12 * 3600, gt=0)
    # Failed logins in a row (per user name and per client address) before attempts are
    # refused with 429; each further failure doubles the wait, up to login_max_delay.
    login_max_failures: int = Field(default=5, ge=1)
    login_window: float = Field(default=15 * 60, gt=0)
    login_max_delay: float = Field(default=15 * 60, gt=0)
    # A token's "last used" time is written at most this often (seconds), so a busy client
    # does not turn every read into a database write.
    token_touch_interval: float = Field(default=60, ge=0)

    def to_environment(self) -> str:
        return self.model_dump_json()

    @classmethod
    def from_environment(cls) -> ServerSettings:
        """The settings a parent process put in ``GRISTMILL_SERVER_SETTINGS``."""
        text = os.environ.get(SETTINGS_ENV)
        if not text:
            raise ConfigError(
                f"{SETTINGS_ENV} is not set: start the server with `gristmill server start` "
                "or `gristmill up`, which set it, rather than pointing uvicorn at the app alone"
            )
        return cls.model_validate_json(text)
