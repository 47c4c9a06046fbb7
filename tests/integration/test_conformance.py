"""Every built-in flavor passes its conformance suite: local and S3 artifact stores (S3 on a
real S3-compatible server), SQLite and PostgreSQL metadata stores (PostgreSQL a real server),
local and local_parallel orchestrators."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

from gristmill.artifacts import ArtifactStore, LocalArtifactStore
from gristmill.artifacts.remote import AzureArtifactStore, GCSArtifactStore, S3ArtifactStore
from gristmill.testing.conformance import (
    ArtifactStoreConformance,
    MetadataStoreConformance,
    OrchestratorConformance,
)
from gristmill.testing.services import S3Server

pytestmark = pytest.mark.integration
_names = itertools.count()


class TestLocalArtifactStore(ArtifactStoreConformance):
    @pytest.fixture
    def artifact_store(self, tmp_path: Path) -> ArtifactStore:
        return LocalArtifactStore(str(tmp_path / "artifacts"))


class TestS3ArtifactStore(ArtifactStoreConformance):
    @pytest.fixture
    def artifact_store(
        self, s3: S3Server, s3_bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> ArtifactStore:
        monkeypatch.setenv("GRISTMILL_CACHE_DIR", str(tmp_path / "cache"))
        return S3ArtifactStore(
            f"s3://{s3_bucket}/artifacts",
            endpoint_url=s3.endpoint_url,
            key=s3.key,
            secret=s3.secret,
            region=s3.region,
        )


class TestAzureArtifactStore(ArtifactStoreConformance):
    """Against Azurite, Microsoft's storage emulator: the blob protocol, not Azure's auth."""

    @pytest.fixture
    def artifact_store(
        self, azure: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> ArtifactStore:
        from azure.storage.blob import BlobServiceClient

        container = f"gristmill{next(_names)}"
        BlobServiceClient.from_connection_string(azure).create_container(container)
        monkeypatch.setenv("GRISTMILL_CACHE_DIR", str(tmp_path / "cache"))
        return AzureArtifactStore(f"az://{container}/artifacts", connection_string=azure)


class TestGCSArtifactStore(ArtifactStoreConformance):
    """Against a GCS JSON-API emulator: the storage protocol, not Google's auth."""

    @pytest.fixture
    def artifact_store(
        self, gcs: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> ArtifactStore:
        bucket = f"gristmill-{next(_names)}"
        store = GCSArtifactStore(
            f"gs://{bucket}/artifacts", endpoint_url=gcs, token="anon", project="test"
        )
        store.fs.mkdir(bucket)
        monkeypatch.setenv("GRISTMILL_CACHE_DIR", str(tmp_path / "cache"))
        return store


class TestSQLiteMetadataStore(MetadataStoreConformance):
    @pytest.fixture
    def metadata_store_url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path / 'conformance.db'}"


class TestPostgresMetadataStore(MetadataStoreConformance):
    @pytest.fixture
    def metadata_store_url(self, postgres_database: str) -> str:
        return postgres_database


class TestLocalOrchestrator(OrchestratorConformance):
    @pytest.fixture
    def orchestrator(self) -> dict[str, Any]:
        return {"flavor": "local"}


class TestParallelOrchestrator(OrchestratorConformance):
    @pytest.fixture
    def orchestrator(self) -> dict[str, Any]:
        return {"flavor": "local_parallel", "max_workers": 4}
