"""The ids the metadata store gives its rows: derived from names where a name is the identity
(pipelines, artifacts, stacks), fresh where each row is a new thing (an artifact version is one
output of one step run), so every store implementation, SQL or server, must take them from
here. Plain functions; no database, no SQLAlchemy."""

from __future__ import annotations

import uuid

from gristmill._hashing import hash_text


def pipeline_id(name: str) -> str:
    return hash_text("pipeline:" + name)[:32]


def pipeline_version_id(pipeline_name: str, spec_hash: str) -> str:
    """One version per distinct spec of a pipeline."""
    return hash_text(f"pipeline-version:{pipeline_name}:{spec_hash}")[:32]


def artifact_id(name: str) -> str:
    return hash_text("artifact:" + name)[:32]


def new_artifact_version_id() -> str:
    """A fresh id: every completed step run's output is a new version, even of bytes an earlier
    version holds (the bytes are stored once, by content hash; the versions share them)."""
    return uuid.uuid4().hex


def component_id(type: str, name: str) -> str:
    return hash_text(f"component:{type}:{name}")[:32]


def stack_id(name: str) -> str:
    return hash_text(f"stack:{name}")[:32]


def secret_id(name: str) -> str:
    return hash_text(f"secret:{name}")[:32]


def model_id(name: str) -> str:
    return hash_text(f"model:{name}")[:32]


def new_model_version_id() -> str:
    """A fresh id: a version's number is per model, and a deleted number is never reused."""
    return uuid.uuid4().hex
