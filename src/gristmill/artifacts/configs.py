"""Settings of the artifact store flavors (pydantic; imported only to validate settings when a
component is registered or updated, never on the run path)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LocalArtifactStoreConfig(_Settings):
    root: str | None = Field(
        None, description="Folder (default: the project's .gristmill/artifacts)."
    )
    trusted: bool = Field(True, description="Load pickled artifacts from it without opting in.")


class S3ArtifactStoreConfig(_Settings):
    path: str = Field(pattern=r"^s3a?://[^/]+", description="s3://bucket/prefix")
    endpoint_url: str | None = Field(
        None, description="For S3-compatible servers (MinIO, Ceph, ...)."
    )
    region: str | None = None
    key: str | None = Field(None, description="Access key id, as a secret reference.")
    secret: str | None = Field(None, description="Secret access key, as a secret reference.")
    token: str | None = Field(None, description="Session token, as a secret reference.")
    client_kwargs: dict[str, Any] | None = Field(
        None, description="More botocore client arguments."
    )
    trusted: bool = Field(False, description="Load pickled artifacts from it without opting in.")


class GCSArtifactStoreConfig(_Settings):
    path: str = Field(pattern=r"^gc?s://[^/]+", description="gs://bucket/prefix")
    project: str | None = None
    token: str | None = Field(
        None,
        description="Service-account JSON (as a secret reference), a key file path, 'cloud' or 'anon'.",
    )
    endpoint_url: str | None = Field(None, description="For a GCS-compatible server.")
    trusted: bool = False


class AzureArtifactStoreConfig(_Settings):
    path: str = Field(pattern=r"^(az|abfs)://[^/]+", description="az://container/prefix")
    account_name: str | None = None
    account_key: str | None = Field(None, description="As a secret reference.")
    connection_string: str | None = Field(None, description="As a secret reference.")
    sas_token: str | None = Field(None, description="As a secret reference.")
    trusted: bool = False
