"""The metadata store interface, one small ABC per capability (writing runs, reading them,
lineage, stacks and components, secrets); ``MetadataStore`` is all of them. Everything
gristmill records or reads goes through these, whether the store is a database (``SQLStore``)
or a gristmill server. No SQLAlchemy here: implementations wrap their own errors into
``StoreError`` / ``NotFoundError`` before they cross this interface."""

from __future__ import annotations

import abc
import re
from collections.abc import Mapping, Sequence
from typing import Any

from gristmill.store.records import (
    ArtifactVersionRecord,
    CacheHit,
    ComponentRecord,
    LineageGraph,
    MetadataRecord,
    NewArtifactVersion,
    PipelineRecord,
    RunDeletion,
    RunRecord,
    SecretRecord,
    StackRecord,
    StepRunRecord,
    StepStart,
)

# How long a running run may go without a heartbeat before it is declared dead.
STALE_AFTER_SECONDS = 120.0
HEARTBEAT_SECONDS = 30.0


class RunWriter(abc.ABC):
    """Records runs as they happen: the run and its steps, cache lookups, each step's outcome
    with its outputs and metadata, heartbeats, and runs whose process died."""

    @abc.abstractmethod
    def create_run(
        self, run: RunRecord, step_runs: Sequence[StepRunRecord], *, spec_json: str
    ) -> None:
        """Insert a run and its step runs (all ``pending``) in one transaction, together with
        its pipeline and pipeline version if they are new (``run.pipeline_name``,
        ``run.spec_hash`` and the spec's JSON). ``run.pipeline_version_id`` must be
        ``ids.pipeline_version_id(run.pipeline_name, run.spec_hash)``. StoreError if the run's
        name is taken."""

    @abc.abstractmethod
    def mark_running(self, step_run_id: str, *, started_at: float) -> None:
        """Show a step run as ``running`` (only while it is still ``pending``). The launcher
        calls this only for steps still running after a moment, so short steps cost one write."""

    @abc.abstractmethod
    def find_cached(self, cache_key: str) -> CacheHit | None:
        """The latest completed step run with this cache key, its outputs and the metadata it
        logged, if there is one."""

    @abc.abstractmethod
    def cache_hit_of(self, step_run_id: str) -> CacheHit:
        """A given step run as a cache hit: its outputs and the metadata it logged."""

    @abc.abstractmethod
    def publish_step_run(
        self,
        step_run_id: str,
        *,
        start: StepStart,
        status: str,
        ended_at: float,
        outputs: Mapping[str, NewArtifactVersion | ArtifactVersionRecord],
        metadata: Sequence[tuple[str, str, Mapping[str, Any]]] = (),
        attempts: int = 1,
        cached_from: str | None = None,
        logs_uri: str | None = None,
    ) -> dict[str, ArtifactVersionRecord]:
        """Atomically: record how the step started (inputs, cache key, ...), create (or reuse)
        the output artifact versions, link them, attach the metadata ``(entity_type, entity_id
        or output name, values)`` and set the final status."""

    @abc.abstractmethod
    def fail_step_run(
        self,
        step_run_id: str,
        *,
        start: StepStart,
        error: str,
        ended_at: float,
        attempts: int,
        logs_uri: str | None = None,
        metadata: Sequence[tuple[str, str, Mapping[str, Any]]] = (),
        status: str = "failed",
    ) -> None:
        """Record how a step run that did not complete ended: ``failed`` with its error, or
        ``stopped`` (interrupted) with the reason, keeping its inputs, logs and metadata."""

    @abc.abstractmethod
    def stop_step_runs(
        self, run_id: str, step_names: Sequence[str], *, reason: str, at: float
    ) -> None:
        """Mark step runs that will not run (an upstream failed, the run was stopped)."""

    @abc.abstractmethod
    def finish_run(
        self,
        run_id: str,
        *,
        status: str,
        ended_at: float,
        error: str | None = None,
        environment: Mapping[str, Any] | None = None,
    ) -> None:
        """Set a run's final status (and complete its recorded environment)."""

    @abc.abstractmethod
    def heartbeat(self, run_id: str, at: float) -> None: ...

    @abc.abstractmethod
    def add_metadata(
        self, entity_type: str, entity_id: str, values: Mapping[str, Any], at: float
    ) -> None: ...

    @abc.abstractmethod
    def reap_dead_runs(self, now: float, *, stale_after: float = STALE_AFTER_SECONDS) -> list[str]:
        """Mark runs whose process died (stale heartbeat, or a dead pid on this host) as
        ``failed``; returns their ids."""


class RunDeleter(abc.ABC):
    """Deletes runs together with what only they hold."""

    @abc.abstractmethod
    def delete_runs(
        self, run_ids: Sequence[str], *, force: bool = False, dry_run: bool = False
    ) -> RunDeletion:
        """In one transaction, delete the runs (ids), their step runs, those step runs' input
        and output edges, the metadata and log rows of all of them, and the artifact versions
        that only these runs produced and no other run used. A version these runs produced
        that another run also lists as an output (a cache hit) stays, its producer becoming
        that run's step run; other runs' cache hits of deleted step runs lose ``cached_from``.
        Artifact bytes are not touched (they are content-addressed and may be shared).

        Refused with StoreError, deleting nothing: a run still ``pending`` or ``running``
        (unless ``force``), and a run whose artifact versions other runs took as inputs (the
        message names those runs; deleting them in the same call is fine). NotFoundError for
        an unknown id. ``dry_run`` checks and reports without deleting."""


class RunReader(abc.ABC):
    """Reads pipelines, runs, step runs, their inputs and outputs, artifact versions, metadata
    and where logs are. A lookup that finds nothing raises NotFoundError."""

    @abc.abstractmethod
    def get_run(self, ref: str) -> RunRecord:
        """A run by id, unique id prefix, or name; NotFoundError otherwise."""

    @abc.abstractmethod
    def list_runs(
        self,
        *,
        pipeline: str | None = None,
        status: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[RunRecord]:
        """Newest first."""

    @abc.abstractmethod
    def count_runs(self, *, pipeline: str | None = None, status: str | None = None) -> int: ...

    @abc.abstractmethod
    def get_step_runs(self, run_id: str) -> list[StepRunRecord]: ...

    @abc.abstractmethod
    def get_step_run(self, step_run_id: str) -> StepRunRecord: ...

    @abc.abstractmethod
    def get_step_run_io(
        self, step_run_ids: Sequence[str]
    ) -> dict[str, tuple[dict[str, ArtifactVersionRecord], dict[str, ArtifactVersionRecord]]]:
        """step run id → (inputs by name, outputs by name)."""

    @abc.abstractmethod
    def get_artifact_version(self, ref: str) -> ArtifactVersionRecord:
        """By id or id prefix, ``name:version``, or ``name`` (the latest version)."""

    @abc.abstractmethod
    def list_artifact_versions(
        self,
        *,
        name: str | None = None,
        run_id: str | None = None,
        content_hash: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[ArtifactVersionRecord]:
        """Newest first (by version number for one name); ``run_id``: the outputs of that run's
        step runs (cache hits included); ``content_hash``: the versions sharing those bytes."""

    @abc.abstractmethod
    def list_artifact_names(self) -> list[str]:
        """Every artifact's name, sorted."""

    @abc.abstractmethod
    def get_metadata(
        self, entity_type: str, entity_ids: Sequence[str]
    ) -> dict[str, list[MetadataRecord]]:
        """entity id → its metadata entries, oldest first."""

    @abc.abstractmethod
    def get_logs_uri(self, step_run_id: str) -> str | None: ...

    @abc.abstractmethod
    def list_pipelines(self) -> list[PipelineRecord]: ...

    @abc.abstractmethod
    def get_pipeline(self, name: str) -> PipelineRecord: ...

    @abc.abstractmethod
    def get_pipeline_spec(self, pipeline_version_id: str) -> str:
        """The spec JSON of a pipeline version."""


class LineageReader(abc.ABC):
    """Walks the lineage edges (step run inputs and outputs) from one artifact version."""

    @abc.abstractmethod
    def lineage(self, artifact_version_id: str, *, direction: str = "upstream") -> LineageGraph:
        """Everything reached from the version, ``upstream`` (what it was made from) or
        ``downstream`` (what was made from it); NotFoundError for an unknown version."""


class StackCatalog(abc.ABC):
    """Registered stack components (by type and name) and the stacks made of them."""

    @abc.abstractmethod
    def save_component(
        self, type: str, name: str, flavor: str, config: Mapping[str, Any]
    ) -> ComponentRecord:
        """Register a component, or replace the flavor and configuration of an existing one."""

    @abc.abstractmethod
    def get_component(self, type: str, name: str) -> ComponentRecord: ...

    @abc.abstractmethod
    def list_components(self, type: str | None = None) -> list[ComponentRecord]: ...

    @abc.abstractmethod
    def delete_component(self, type: str, name: str) -> None:
        """Refused (StoreError) while a stack uses the component."""

    @abc.abstractmethod
    def save_stack(self, name: str, components: Mapping[str, str]) -> StackRecord:
        """Register or replace a stack: component type → component name."""

    @abc.abstractmethod
    def get_stack(self, name: str) -> StackRecord: ...

    @abc.abstractmethod
    def list_stacks(self) -> list[StackRecord]: ...

    @abc.abstractmethod
    def delete_stack(self, name: str) -> None: ...


class SecretVault(abc.ABC):
    """Named secrets, kept as ciphertext: the store never sees their values."""

    @abc.abstractmethod
    def save_secret(self, name: str, keys: Sequence[str], ciphertext: str) -> None: ...

    @abc.abstractmethod
    def get_secret(self, name: str) -> SecretRecord: ...

    @abc.abstractmethod
    def list_secrets(self) -> list[SecretRecord]: ...

    @abc.abstractmethod
    def delete_secret(self, name: str) -> None: ...


class MetadataStore(RunWriter, RunReader, RunDeleter, LineageReader, StackCatalog, SecretVault):
    """Every capability of a metadata store, at one URL. A new feature (model registry,
    deployments, users) adds a capability interface here rather than growing another one."""

    url: str

    def close(self) -> None:
        """Release connections."""


_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://\S+")
_QUERY_PASSWORD = re.compile(r"([?&](?:password|passwd|pwd)=)[^&#\s]*", re.IGNORECASE)


def safe_url(url: str) -> str:
    """The URL without its password (``user:***@host``, ``?password=***``), for messages,
    listings and anything recorded. Errs on the side of masking: everything between the
    user name and the last ``@`` goes."""
    if "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    if "@" in rest:
        creds, host = rest.rsplit("@", 1)
        if ":" in creds:
            rest = f"{creds.split(':', 1)[0]}:***@{host}"
    return f"{scheme}://" + _QUERY_PASSWORD.sub(r"\1***", rest)


def redact_url_passwords(text: str) -> str:
    """``text`` with the password of every URL in it masked (``safe_url``): for a command
    line (``--store postgresql+psycopg://u:PASSWORD@host/db``) or a message quoting one."""
    if "://" not in text:
        return text
    return _URL.sub(lambda found: safe_url(found.group(0)), text)
