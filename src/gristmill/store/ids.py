"""The ids the metadata store derives from names and content: they define content addressing
(the same output in the same place is one artifact version), so every store implementation,
SQL or server, must derive them here. Plain functions; no database, no SQLAlchemy."""

from __future__ import annotations

from gristmill._hashing import hash_json, hash_text
from gristmill.store.records import NewArtifactVersion


def pipeline_id(name: str) -> str:
    return hash_text("pipeline:" + name)[:32]


def pipeline_version_id(pipeline_name: str, spec_hash: str) -> str:
    """One version per distinct spec of a pipeline."""
    return hash_text(f"pipeline-version:{pipeline_name}:{spec_hash}")[:32]


def artifact_id(name: str) -> str:
    return hash_text("artifact:" + name)[:32]


def artifact_version_id(new: NewArtifactVersion) -> str:
    """Derived from where the content is (its URI holds the store and the content hash): the
    same bytes of the same artifact in the same store are one version. The same bytes in
    another stack's store are another version, which that stack can load."""
    return hash_json([new.artifact_name, new.uri, new.materializer, new.data_type])[:32]


def component_id(type: str, name: str) -> str:
    return hash_text(f"component:{type}:{name}")[:32]


def stack_id(name: str) -> str:
    return hash_text(f"stack:{name}")[:32]


def secret_id(name: str) -> str:
    return hash_text(f"secret:{name}")[:32]
