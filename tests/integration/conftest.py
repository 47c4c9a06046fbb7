"""Real services for integration tests, started once per session on loopback."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from gristmill.testing.services import (
    S3Server,
    azure_blob_server,
    gcs_server,
    postgres_server,
    s3_server,
)

_databases = itertools.count()


@pytest.fixture(scope="session")
def postgres() -> Iterator[str]:
    """The URL of a database on a throwaway PostgreSQL server."""
    with postgres_server() as url:
        yield url


@pytest.fixture
def postgres_database(postgres: str) -> str:
    """A new, empty database on that server, for one test."""
    import sqlalchemy

    name = f"test_{next(_databases)}"
    admin = sqlalchemy.create_engine(postgres, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    return postgres.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(scope="session")
def s3() -> Iterator[S3Server]:
    with s3_server() as server:
        yield server


@pytest.fixture
def s3_bucket(s3: S3Server) -> str:
    return s3.create_bucket(f"bucket-{next(_databases)}")


@pytest.fixture(scope="session")
def azure() -> Iterator[str]:
    """A connection string of a local Azurite blob service."""
    with azure_blob_server() as connection_string:
        yield connection_string


@pytest.fixture(scope="session")
def gcs() -> Iterator[str]:
    """The endpoint of a local GCS emulator."""
    with gcs_server() as endpoint:
        yield endpoint
