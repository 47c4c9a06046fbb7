"""Issue 15, finding 1, through a real S3-compatible server: objects planted in the bucket next
to a stored artifact (a key that climbs out with ``..``, an extra file in its folder) are
refused by ``gristmill artifacts load``, and nothing is written outside the download cache."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gristmill.artifacts import load_artifact, save_artifact
from gristmill.artifacts.remote import S3ArtifactStore
from gristmill.errors import ArtifactStoreError
from gristmill.project import Project
from gristmill.testing.services import S3Server

pytestmark = pytest.mark.integration

PIPELINE = """
from typing import Annotated
from gristmill import pipeline, step

@step
def greet() -> Annotated[str, "greeting"]:
    return "hello from the bucket"

@pipeline
def hello():
    greet()
"""


def _climbing_key(uri_key: str, outside: Path) -> str:
    """A key below the artifact's folder whose ``..`` segments lead to ``outside``."""
    return f"{uri_key}/" + "../" * 40 + str(outside).lstrip("/")


def test_a_planted_key_that_climbs_out_is_refused_by_artifacts_load(
    tmp_path: Path, project: Project, s3: S3Server, s3_bucket: str
) -> None:
    folder = tmp_path / "team"
    folder.mkdir()
    (folder / "pipeline.py").write_text(PIPELINE)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRISTMILL_")}
    env["GRISTMILL_CACHE_DIR"] = str(tmp_path / "cache")
    command = str(Path(sys.executable).with_name("gristmill"))

    def gristmill(*args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [command, *args], cwd=folder, env=env, capture_output=True, text=True, timeout=300
        )
        assert result.returncode == code, result.stdout + result.stderr
        return result

    gristmill("init")
    gristmill("secret", "create", "s3", f"key={s3.key}", f"secret={s3.secret}")
    gristmill(
        "component",
        "register",
        "artifact_store",
        "team-bucket",
        "--flavor",
        "s3",
        f"path=s3://{s3_bucket}/gristmill",
        f"endpoint_url={s3.endpoint_url}",
        f"region={s3.region}",
        "key={{ secret.s3.key }}",
        "secret={{ secret.s3.secret }}",
    )
    gristmill("stack", "register", "team", "-o", "local", "-a", "team-bucket", "--set")
    assert json.loads(gristmill("run", "pipeline:hello", "--json").stdout)["status"] == "completed"
    uri = json.loads(gristmill("artifacts", "show", "greeting:1", "--json").stdout)["uri"]
    key = uri.removeprefix(f"s3://{s3_bucket}/")

    # the attacker, with write access to the bucket only
    outside = tmp_path / "outside" / "PWNED"
    client = s3.client()
    client.put_object(Bucket=s3_bucket, Key=_climbing_key(key, outside), Body=b"pwned")  # type: ignore[attr-defined]
    listed = client.list_objects_v2(Bucket=s3_bucket, Prefix=key)["Contents"]  # type: ignore[attr-defined]
    assert any(".." in o["Key"] for o in listed)  # S3 keeps the key as written

    refused = gristmill("artifacts", "load", "greeting:1", code=1)
    assert "refusing to download the artifact data" in refused.stderr
    assert "PWNED" in refused.stderr  # the planted object is named
    assert not outside.exists() and not outside.parent.exists()
    gristmill("artifacts", "load", "greeting:1", "--to", str(tmp_path / "copy.json"), code=1)
    assert not outside.exists() and not (tmp_path / "copy.json").exists()
    # nothing was left half-downloaded in the cache either
    assert not list((tmp_path / "cache").glob("artifacts/*"))

    # once the planted object is gone the artifact loads as before
    client.delete_object(Bucket=s3_bucket, Key=_climbing_key(key, outside))  # type: ignore[attr-defined]
    assert gristmill("artifacts", "load", "greeting:1").stdout == "hello from the bucket\n"


@pytest.fixture
def bucket_store(
    s3: S3Server, s3_bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> S3ArtifactStore:
    monkeypatch.setenv("GRISTMILL_CACHE_DIR", str(tmp_path / "cache"))
    return S3ArtifactStore(
        f"s3://{s3_bucket}/artifacts",
        endpoint_url=s3.endpoint_url,
        key=s3.key,
        secret=s3.secret,
        region=s3.region,
    )


def _planted(s3: S3Server, s3_bucket: str, store: S3ArtifactStore, name: str) -> str:
    """Stores a value, plants ``name`` (relative to its folder) beside it; returns its URI."""
    saved = save_artifact(store, {"value": 1}, where="test")
    key = saved.content.uri.removeprefix(f"s3://{s3_bucket}/")
    s3.client().put_object(Bucket=s3_bucket, Key=f"{key}/{name}", Body=b"planted")  # type: ignore[attr-defined]
    return saved.content.uri


def test_an_extra_file_in_the_hashed_folder_is_refused(
    s3: S3Server, s3_bucket: str, bucket_store: S3ArtifactStore
) -> None:
    """Only the files the content hash covers are accepted: one added to the folder (a pickle
    next to the JSON, say) makes the download fail its hash check, whatever the materializer."""
    uri = _planted(s3, s3_bucket, bucket_store, "value.pkl")
    with pytest.raises(ArtifactStoreError, match="do not hash to its content address"):
        load_artifact(bucket_store, uri, "json", "builtins.dict")


def test_a_changed_file_is_refused(
    s3: S3Server, s3_bucket: str, bucket_store: S3ArtifactStore
) -> None:
    uri = _planted(s3, s3_bucket, bucket_store, "data.json")  # overwrites the stored JSON
    with pytest.raises(ArtifactStoreError, match="do not hash to its content address"):
        bucket_store.local_directory(uri)


def test_a_uri_outside_the_prefix_is_refused(
    s3: S3Server, s3_bucket: str, bucket_store: S3ArtifactStore
) -> None:
    saved = save_artifact(bucket_store, {"value": 1}, where="test")
    for uri in (
        f"s3://{s3_bucket}/elsewhere/{saved.content.content_hash}",
        f"{bucket_store.root}/{saved.content.content_hash[:2]}/{saved.content.content_hash}/..",
        f"{bucket_store.root}/../other/{saved.content.content_hash[:2]}/{saved.content.content_hash}",
    ):
        with pytest.raises(ArtifactStoreError, match="not a content address"):
            bucket_store.local_directory(uri)
    assert load_artifact(bucket_store, saved.content.uri, "json", "builtins.dict") == {"value": 1}
