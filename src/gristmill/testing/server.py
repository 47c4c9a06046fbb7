"""A real gristmill server for tests: ``running_server()`` starts ``gristmill server start``
(uvicorn) in its own process on a free loopback port over a project's store, with an admin,
an editor and a viewer (a password and an API token each), waits until ``/health`` answers,
and stops it afterwards. With pytest, the ``gristmill_server`` fixture does this over the
test's ``gristmill_project``. Needs the ``server`` extra (httpx for the clients)."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gristmill.errors import ServiceError

if TYPE_CHECKING:
    import httpx

    from gristmill.project import Project

__all__ = ["ROLES", "RunningServer", "ServerUser", "running_server"]

ROLES = ("admin", "editor", "viewer")
_LAUNCH = "from gristmill.cli.main import main; main()"


@dataclass(frozen=True)
class ServerUser:
    """A user the test server was started with: its name (the role's name), role, password
    and an API token of that role."""

    name: str
    role: str
    password: str
    token: str


@dataclass
class RunningServer:
    """A started server: its ``url``, the ``store_url`` it serves, and ``users`` by role
    (``"admin"``, ``"editor"``, ``"viewer"``)."""

    url: str
    store_url: str
    project: Path | None
    users: dict[str, ServerUser]
    log_path: Path
    process: subprocess.Popen[bytes] = field(repr=False)

    def token(self, role: str = "admin") -> str:
        return self.users[role].token

    def headers(self, role: str = "admin") -> dict[str, str]:
        """``Authorization: Bearer`` for the token of ``role``."""
        return {"Authorization": f"Bearer {self.token(role)}"}

    def client(self, role: str | None = "admin", **options: Any) -> httpx.Client:
        """An httpx client on the server with the token of ``role`` (None: no credentials)."""
        import httpx

        headers = self.headers(role) if role is not None else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30, **options)

    def login(self, role: str = "admin") -> httpx.Client:
        """An httpx client logged in through ``/api/v1/auth/login`` like a browser: it holds
        the session cookie, and sends the session's CSRF value as ``X-CSRF-Token``."""
        import httpx

        user = self.users[role]
        answer = httpx.post(
            f"{self.url}/api/v1/auth/login",
            json={"username": user.name, "password": user.password},
            timeout=30,
        )
        if answer.status_code != 200:
            raise ServiceError(f"logging in as '{user.name}' failed: {answer.text}")
        # A client not used yet, so that `with server.login(...) as browser:` works.
        client = self.client(None, cookies=answer.cookies)
        client.headers["X-CSRF-Token"] = answer.json()["csrf_token"]
        return client

    def log(self) -> str:
        """What the server wrote to stdout and stderr so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self, timeout: float = 15) -> None:
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def _create_users(store_url: str) -> dict[str, ServerUser]:
    from gristmill.server.credentials import create_token, create_user
    from gristmill.store import open_store

    store = open_store(store_url)
    users = {}
    try:
        for role in ROLES:
            password = secrets.token_urlsafe(12)
            create_user(store, role, role=role, password=password)
            token, _ = create_token(store, role, name=f"{role}-test")
            users[role] = ServerUser(role, role, password, token)
    finally:
        store.close()
    return users


def _wait_until_up(process: subprocess.Popen[bytes], url: str, log: Path, timeout: float) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:]
            raise ServiceError(
                f"the gristmill server exited with status {process.returncode} before "
                f"answering on {url}:\n{tail}"
            )
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    process.kill()
    tail = log.read_text(errors="replace")[-3000:]
    raise ServiceError(f"the gristmill server did not answer on {url} in {timeout:.0f} s:\n{tail}")


@contextmanager
def running_server(
    project: Project | str | Path | None = None,
    *,
    store_url: str | None = None,
    users: bool = True,
    workers: int = 1,
    args: Sequence[str] = (),
    env: dict[str, str] | None = None,
    startup_timeout: float = 60,
) -> Iterator[RunningServer]:
    """A real server, in its own process, on a free loopback port, over ``project``'s store
    (or ``store_url``; with neither, a fresh project in a temporary folder). ``users``: add
    an admin, an editor and a viewer with a token each. ``args``: more options for
    ``gristmill server start`` (e.g. ``--session-hours``)."""
    from gristmill.project import Project

    with tempfile.TemporaryDirectory(prefix="gristmill-server-") as temporary:
        folder = Path(temporary)
        root: Path | None = None
        if project is None and store_url is None:
            created = Project(folder / "project")
            created.init()
            root = created.root
        elif project is not None:
            root = project.root if isinstance(project, Project) else Path(project).resolve()
        if store_url is None:
            assert root is not None
            store_url = Project(root).store_url
        made = _create_users(store_url) if users else {}
        log_path = folder / "server.log"
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        command = [
            sys.executable,
            "-c",
            _LAUNCH,
            *(["--project", str(root)] if root is not None else []),
            "server",
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--store-url",
            store_url,
            "--log-level",
            "warning",
            *args,
        ]
        environment = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        environment.pop("GRISTMILL_SERVER_SETTINGS", None)
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=environment, cwd=folder
            )
        server = RunningServer(url, store_url, root, made, log_path, process)
        try:
            _wait_until_up(process, url, log_path, startup_timeout)
            yield server
        finally:
            server.stop()
