"""What the Client returns for the model registry: ``RegisteredModel`` and ``ModelVersion``
(its artifacts, metadata, stage and stage history, the run that created it). They read and
write through the client's metadata store and hand back the client's own artifact and run
objects; they never import the client (it imports them)."""

from __future__ import annotations

import getpass
import os
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from gristmill.errors import NotFoundError, did_you_mean
from gristmill.models.definition import ModelStages
from gristmill.store import (
    Entity,
    ModelArtifactLink,
    ModelRecord,
    ModelVersionRecord,
    StageChange,
)

if TYPE_CHECKING:
    from gristmill.client import ArtifactVersion, Client, Run


def current_user() -> str:
    """Who a stage change is recorded for: ``GRISTMILL_USER``, else the OS user."""
    found = os.environ.get("GRISTMILL_USER")
    if found:
        return found
    try:
        return getpass.getuser()
    except Exception:  # no user database entry (some containers)
        return "unknown"


def _when(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, timezone.utc)


class RegisteredModel:
    """A model in the registry: its description, model card and versions."""

    def __init__(self, client: Client, record: ModelRecord) -> None:
        self._client = client
        self._record = record

    def __repr__(self) -> str:
        return f"<RegisteredModel {self.name} ({self.version_count} versions)>"

    @property
    def id(self) -> str:
        return self._record.id

    @property
    def name(self) -> str:
        return self._record.name

    @property
    def description(self) -> str | None:
        return self._record.description

    @property
    def license(self) -> str | None:
        return self._record.license

    @property
    def tags(self) -> list[str]:
        return list(self._record.tags)

    @property
    def details(self) -> dict[str, str]:
        """Model card fields: audience, use_cases, limitations, trade_offs, ethics."""
        return dict(self._record.details)

    @property
    def version_count(self) -> int:
        return self._record.version_count

    @property
    def created_at(self) -> datetime:
        return _when(self._record.created_at)

    @property
    def versions(self) -> list[ModelVersion]:
        """Newest first."""
        return [
            ModelVersion(self._client, r) for r in self._client.store.list_model_versions(self.name)
        ]

    def get_version(self, ref: str | int = ModelStages.LATEST) -> ModelVersion:
        return ModelVersion(self._client, self._client.store.get_model_version(self.name, ref))

    @property
    def latest(self) -> ModelVersion:
        return self.get_version(ModelStages.LATEST)

    def stage(self, stage: str) -> ModelVersion | None:
        """The version in ``stage`` (the newest one for ``archived``), if any."""
        found = self._client.store.list_model_versions(self.name, stage=stage)
        return ModelVersion(self._client, found[0]) if found else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "license": self.license,
            "tags": self.tags,
            **({"details": self.details} if self.details else {}),
            "version_count": self.version_count,
            "latest_version": self._record.latest_version,
            "created_at": self.created_at.isoformat(),
        }


class ModelVersion:
    """One version of a model: ``name`` is the model's name, ``version`` the version's name
    (its number as text when it has no name), ``number`` its number. Linked to the artifact
    versions of the runs that used it (``artifacts``, ``get_artifact``), with metadata, a
    stage and the history of its stages."""

    def __init__(self, client: Client, record: ModelVersionRecord) -> None:
        self._client = client
        self._record = record
        self._links: list[ModelArtifactLink] | None = None

    def __repr__(self) -> str:
        stage = f" [{self.stage}]" if self.stage else ""
        return f"<ModelVersion {self.name}:{self.version}{stage}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ModelVersion) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    @property
    def id(self) -> str:
        return self._record.id

    @property
    def name(self) -> str:
        """The model's name."""
        return self._record.model_name

    @property
    def model_name(self) -> str:
        return self._record.model_name

    @property
    def version(self) -> str:
        """The version's name, or its number as text."""
        return self._record.name or str(self._record.number)

    @property
    def number(self) -> int:
        return self._record.number

    @property
    def stage(self) -> str | None:
        """staging, production, archived, or None."""
        return self._record.stage

    @property
    def description(self) -> str | None:
        return self._record.description

    @property
    def tags(self) -> list[str]:
        return list(self._record.tags)

    @property
    def created_at(self) -> datetime:
        return _when(self._record.created_at)

    @property
    def run_id(self) -> str | None:
        """The run that created this version (None when registered by hand)."""
        return self._record.run_id

    @property
    def run(self) -> Run | None:
        """The run that created this version (None when registered by hand or deleted)."""
        if self._record.run_id is None:
            return None
        try:
            return self._client.get_run(self._record.run_id)
        except NotFoundError:
            return None

    @property
    def model(self) -> RegisteredModel:
        return RegisteredModel(self._client, self._client.store.get_model(self.name))

    # -- metadata -----------------------------------------------------------------------------

    @property
    def metadata(self) -> dict[str, Any]:
        """Each key's latest value."""
        entries = self._client.store.get_metadata(Entity.MODEL_VERSION, [self.id])[self.id]
        return {e.key: e.value for e in entries}

    def log_metadata(self, metadata: dict[str, Any]) -> None:
        """Attach metadata (metrics, notes: JSON values) to this version."""
        from gristmill.store.metadata_values import metadata_value

        for key, value in metadata.items():
            metadata_value(key, value)
        self._client.store.add_metadata(Entity.MODEL_VERSION, self.id, metadata, time.time())

    # -- artifacts ----------------------------------------------------------------------------

    def _linked(self) -> list[ModelArtifactLink]:
        if self._links is None:
            self._links = self._client.store.list_model_artifacts(self.id)
        return self._links

    def _by_name(self, kind: str | None = None) -> dict[str, ArtifactVersion]:
        found: dict[str, ArtifactVersion] = {}
        newest: dict[str, int] = {}
        for link in self._linked():
            record = link.artifact_version
            if kind is not None and link.kind != kind:
                continue
            if record.version >= newest.get(record.artifact_name, 0):
                newest[record.artifact_name] = record.version
                found[record.artifact_name] = self._client.get_artifact_version(record.id)
        return found

    @property
    def artifacts(self) -> dict[str, ArtifactVersion]:
        """Artifact name → the (newest) linked version of it, whatever its kind."""
        return self._by_name()

    @property
    def model_artifacts(self) -> dict[str, ArtifactVersion]:
        return self._by_name("model")

    @property
    def data_artifacts(self) -> dict[str, ArtifactVersion]:
        return self._by_name("data")

    @property
    def deployment_artifacts(self) -> dict[str, ArtifactVersion]:
        return self._by_name("deployment")

    def artifact_kinds(self) -> dict[str, str]:
        """Artifact name → how it is linked (model, data or deployment)."""
        return {link.artifact_version.artifact_name: link.kind for link in self._linked()}

    def get_artifact(self, name: str, version: int | None = None) -> ArtifactVersion:
        """The linked version of artifact ``name`` (the newest linked one, or number
        ``version``). In a pipeline's body, pass it to a step as an input."""
        matching = [
            link.artifact_version
            for link in self._linked()
            if link.artifact_version.artifact_name == name
            and (version is None or link.artifact_version.version == version)
        ]
        if not matching:
            names = sorted({link.artifact_version.artifact_name for link in self._linked()})
            which = f"version {version} of " if version is not None else ""
            raise NotFoundError(
                f"{self.name} version {self.version} has no {which}artifact '{name}'"
                f"{did_you_mean(name, names)} (its artifacts: {', '.join(names) or 'none'})"
            )
        newest = max(matching, key=lambda record: record.version)
        return self._client.get_artifact_version(newest.id)

    def load_artifact(self, name: str, version: int | None = None) -> Any:
        """The value of ``get_artifact(name)``, loaded."""
        return self.get_artifact(name, version).load()

    def link_artifact(self, artifact: ArtifactVersion | str, *, kind: str = "data") -> None:
        """Link an existing artifact version (object, id or ``NAME:VERSION``) to this version
        as a model, data or deployment artifact."""
        if isinstance(artifact, str):
            artifact = self._client.get_artifact_version(artifact)
        self._client.store.link_model_artifacts(self.id, {artifact.id: kind}, at=time.time())
        self._links = None

    # -- stages -------------------------------------------------------------------------------

    def set_stage(self, stage: str | None, force: bool = False, *, note: str | None = None) -> None:
        """Move this version to ``stage`` (staging, production, archived; None or "none" for
        none), recorded with who (GRISTMILL_USER or the OS user) and when. If another version
        is in staging/production, refused naming it unless ``force``, which archives it."""
        self._record = self._client.store.set_model_version_stage(
            self.id, stage, force=force, user=current_user(), at=time.time(), note=note
        )

    @property
    def stage_history(self) -> list[StageChange]:
        return self._client.store.get_stage_history(self.id)

    def delete(self, *, force: bool = False) -> None:
        """Delete this version (its links, metadata and history; the artifacts stay).
        Refused for a version in production unless ``force``."""
        self._client.store.delete_model_version(self.id, force=force)

    def refresh(self) -> ModelVersion:
        self._record = self._client.store.get_model_version(self.name, self.number)
        self._links = None
        return self

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "model": self.name,
            "version": self.version,
            "number": self.number,
            "stage": self.stage,
            "description": self.description,
            "tags": self.tags,
            "created_at": self.created_at.isoformat(),
            "run_id": self.run_id,
            "metadata": self.metadata,
            "artifacts": [
                {
                    "name": link.artifact_version.artifact_name,
                    "version": link.artifact_version.version,
                    "id": link.artifact_version.id,
                    "kind": link.kind,
                }
                for link in self._linked()
            ],
            "stage_history": [
                {
                    "stage": change.stage,
                    "previous_stage": change.previous_stage,
                    "user": change.user,
                    "at": _when(change.at).isoformat(),
                    "note": change.note,
                }
                for change in self.stage_history
            ],
        }
