"""Artifact stores on object storage, through fsspec: S3 (and S3-compatible servers) with s3fs,
Google Cloud Storage with gcsfs, Azure Blob Storage with adlfs. Each imports its library only
when used and is installed with its extra (``pip install "gristmill[s3]"``).

Credentials belong in secrets (``key={{ secret.s3.key }}``); these stores are not trusted for
pickled data unless ``trusted=true``.

Their clients retry by themselves, so the store does not add attempts of its own; S3's are
bounded (``S3_CLIENT_CONFIG``): an unreachable endpoint is reported within a few seconds.
"""

from __future__ import annotations

from typing import Any, ClassVar

from gristmill.artifacts.store import ArtifactStore
from gristmill.errors import ConfigError

# botocore's defaults retry a refused connection 4 times with exponential backoff and wait
# 60 s per connect and read: a run on an unreachable endpoint took ~45 s to fail. These keep an
# unreachable endpoint under ~5 s (connection refused) and still ride out a brief blip or
# throttling. ``client_kwargs`` cannot override them (botocore's Config is separate).
S3_CLIENT_CONFIG: dict[str, Any] = {
    "connect_timeout": 3,
    "read_timeout": 30,
    "retries": {"total_max_attempts": 3, "mode": "standard"},
}
# s3fs retries timeouts and some HTTP errors itself, 5 times by default, on top of botocore.
S3FS_RETRIES = 2


class _ObjectStore(ArtifactStore):
    # requires, extra, config_model and secret_fields (settings that carry credentials,
    # accepted only as secret references) are declared by each flavor; see Flavor.
    scheme: ClassVar[tuple[str, ...]]
    connect_attempts = 1  # their clients retry by themselves

    def __init__(self, path: str, *, trusted: bool = False, **options: Any) -> None:
        if not path.startswith(tuple(f"{s}://" for s in self.scheme)):
            raise ConfigError(
                f"{self.flavor} artifact store path must start with {' or '.join(s + '://' for s in self.scheme)}, "
                f"got {path!r}"
            )
        super().__init__(path, trusted=trusted, storage_options=self._storage_options(**options))

    def _storage_options(self, **options: Any) -> dict[str, Any]:
        return {k: v for k, v in options.items() if v is not None}


class S3ArtifactStore(_ObjectStore):
    """Amazon S3 or any S3-compatible server (MinIO, Ceph, moto) via ``endpoint_url``."""

    flavor = "s3"
    scheme = ("s3", "s3a")
    requires = ("s3fs",)
    extra = "s3"
    config_model = "gristmill.artifacts.configs:S3ArtifactStoreConfig"
    secret_fields = ("key", "secret", "token")

    def _storage_options(  # type: ignore[override]
        self,
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        key: str | None = None,
        secret: str | None = None,
        token: str | None = None,
        client_kwargs: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        kwargs = dict(client_kwargs or {})
        if endpoint_url:
            kwargs["endpoint_url"] = endpoint_url
        if region:
            kwargs["region_name"] = region
        options: dict[str, Any] = {"client_kwargs": kwargs} if kwargs else {}
        for name, value in (("key", key), ("secret", secret), ("token", token)):
            if value is not None:
                options[name] = value
        # Writers of the same object race harmlessly (same bytes); no listing cache, so a
        # completion marker written by another process is seen at once.
        options["use_listings_cache"] = False
        options["config_kwargs"] = {
            **S3_CLIENT_CONFIG,
            "retries": dict(S3_CLIENT_CONFIG["retries"]),
        }
        return options

    @property
    def fs(self) -> Any:
        if self._fs is None:
            from s3fs import S3FileSystem

            filesystem = S3FileSystem(**self.storage_options)
            filesystem.retries = S3FS_RETRIES
            self._fs = filesystem
        return self._fs


class GCSArtifactStore(_ObjectStore):
    """Google Cloud Storage (``gs://bucket/prefix``)."""

    flavor = "gcs"
    scheme = ("gs", "gcs")
    requires = ("gcsfs",)
    extra = "gcs"
    config_model = "gristmill.artifacts.configs:GCSArtifactStoreConfig"
    secret_fields = ("token",)

    @property
    def fs(self) -> Any:
        # gcsfs's default class probes every bucket over gRPC for its (experimental) zonal and
        # hierarchical layouts; the core filesystem speaks the plain JSON API only.
        if self._fs is None:
            from gcsfs.core import GCSFileSystem

            self._fs = GCSFileSystem(**self.storage_options)
        return self._fs

    def _storage_options(  # type: ignore[override]
        self,
        *,
        project: str | None = None,
        token: str | None = None,
        endpoint_url: str | None = None,
    ) -> dict[str, Any]:
        options: dict[str, Any] = {}
        if project:
            options["project"] = project
        if token:
            options["token"] = _json_or_text(token)
        if endpoint_url:
            options["endpoint_url"] = endpoint_url
        return options


class AzureArtifactStore(_ObjectStore):
    """Azure Blob Storage (``az://container/prefix``)."""

    flavor = "azure"
    scheme = ("az", "abfs")
    requires = ("adlfs",)
    extra = "azure"
    config_model = "gristmill.artifacts.configs:AzureArtifactStoreConfig"
    secret_fields = ("account_key", "connection_string", "sas_token")

    def _storage_options(  # type: ignore[override]
        self,
        *,
        account_name: str | None = None,
        account_key: str | None = None,
        connection_string: str | None = None,
        sas_token: str | None = None,
    ) -> dict[str, Any]:
        options = {
            "account_name": account_name,
            "account_key": account_key,
            "connection_string": connection_string,
            "sas_token": sas_token,
        }
        return {k: v for k, v in options.items() if v is not None}


def _json_or_text(value: str) -> Any:
    """A service-account key given as JSON text is passed as a dict; a path as it is."""
    if value.lstrip().startswith("{"):
        import json

        return json.loads(value)
    return value
