"""Real services on loopback for tests: a throwaway PostgreSQL cluster (Debian's server
binaries, initialized in a temporary folder) and an S3-compatible server (moto's). Each is a
context manager that yields a URL and tears the service down afterwards."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from gristmill.errors import ServiceError  # defined with the rest of the tree; raised here


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(
    port: int, *, timeout: float = 30.0, process: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise ServiceError(
                f"the service exited (status {process.returncode}) before listening on {port}"
            )
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", port), timeout=0.5),
        ):
            return
        time.sleep(0.05)
    raise ServiceError(f"nothing listened on 127.0.0.1:{port} within {timeout:.0f}s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


def postgres_binaries() -> Path | None:
    """The folder with initdb and pg_ctl (Debian puts them under /usr/lib/postgresql/N/bin)."""
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), reverse=True)
    return candidates[0].parent if candidates else None


@contextlib.contextmanager
def postgres_server(database: str = "gristmill") -> Iterator[str]:
    """A PostgreSQL server on 127.0.0.1 for the duration of the block; yields a SQLAlchemy URL
    (``postgresql+psycopg://postgres@127.0.0.1:PORT/database``, trust authentication).

    Run as root, the cluster belongs to the ``postgres`` user (PostgreSQL refuses root).
    """
    binaries = postgres_binaries()
    if binaries is None:
        raise ServiceError(
            "PostgreSQL's server binaries (initdb, pg_ctl) are not installed: "
            "apt-get install -y postgresql (make test installs them where it can)"
        )
    folder = Path(tempfile.mkdtemp(prefix="gristmill-pg-"))
    data = folder / "data"
    port = free_port()
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]

    def run(*args: str) -> None:
        result = subprocess.run([*as_user, *args], capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise ServiceError(
                f"{' '.join(args[:2])} failed: {result.stderr.strip() or result.stdout.strip()}"
            )

    try:
        run(
            str(binaries / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
        )
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={folder} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        run(
            str(binaries / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            options,
            "-l",
            str(folder / "server.log"),
            "-w",
            "start",
        )
        wait_for_port(port)
        import sqlalchemy

        engine = sqlalchemy.create_engine(
            f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres", isolation_level="AUTOCOMMIT"
        )
        with engine.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{database}"')
        engine.dispose()
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/{database}"
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run(
                [*as_user, str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                capture_output=True,
                check=False,
            )
        shutil.rmtree(folder, ignore_errors=True)


@dataclass(frozen=True)
class S3Server:
    endpoint_url: str
    key: str = "testing-key"
    secret: str = "testing-secret-value"
    region: str = "us-east-1"

    def client(self) -> object:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.key,
            aws_secret_access_key=self.secret,
            region_name=self.region,
        )

    def create_bucket(self, name: str) -> str:
        self.client().create_bucket(Bucket=name)  # type: ignore[attr-defined]
        return name


@contextlib.contextmanager
def s3_server() -> Iterator[S3Server]:
    """moto's S3-compatible server on 127.0.0.1 (a separate process) for the block."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, process=process)
        yield S3Server(f"http://127.0.0.1:{port}")
    finally:
        _stop(process)


AZURITE_ACCOUNT = "devstoreaccount1"
# Azurite's documented development account key: public, for the emulator only.
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


def azurite_command() -> str | None:
    """Azurite's blob service: GRISTMILL_AZURITE, ./.cache/azurite (where `make test` installs
    it from npm), or azurite-blob on PATH."""
    explicit = os.environ.get("GRISTMILL_AZURITE")
    if explicit:
        return explicit
    for folder in (Path.cwd(), *Path.cwd().parents):
        candidate = folder / ".cache" / "azurite" / "node_modules" / ".bin" / "azurite-blob"
        if candidate.exists():
            return str(candidate)
    return shutil.which("azurite-blob")


@contextlib.contextmanager
def azure_blob_server() -> Iterator[str]:
    """Azurite (Microsoft's Azure Storage emulator, from npm) on 127.0.0.1; yields a
    connection string for its development account."""
    command = azurite_command()
    if command is None:
        raise ServiceError(
            "Azurite is not installed: npm install --prefix .cache/azurite azurite@3"
        )
    port = free_port()
    folder = Path(tempfile.mkdtemp(prefix="gristmill-azurite-"))
    process = subprocess.Popen(
        [
            command,
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            str(port),
            "--location",
            str(folder),
            "--skipApiVersionCheck",
            "--loose",
            "--silent",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, process=process)
        yield (
            f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
            f"BlobEndpoint=http://127.0.0.1:{port}/{AZURITE_ACCOUNT};"
        )
    finally:
        _stop(process)
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def gcs_server() -> Iterator[str]:
    """A GCS JSON-API emulator (the gcp-storage-emulator package) on 127.0.0.1; yields its
    endpoint URL."""
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gcp_storage_emulator",
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--in-memory",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, process=process)
        yield f"http://127.0.0.1:{port}"
    finally:
        _stop(process)
