"""The metadata store interface, one small ABC per capability (writing runs, reading them,
lineage, stacks and components, secrets, metric series, users); ``MetadataStore`` is all of them. Everything
gristmill records or reads goes through these, whether the store is a database (``SQLStore``)
or a gristmill server. No SQLAlchemy here: implementations wrap their own errors into
``StoreError`` / ``NotFoundError`` before they cross this interface."""

from __future__ import annotations

import abc
import re
from collections.abc import Mapping, Sequence
from typing import Any

from gristmill.store.records import (
    ApiTokenRecord,
    ArtifactVersionRecord,
    CacheHit,
    ComponentRecord,
    ExperimentRecord,
    LineageGraph,
    MetadataRecord,
    MetricPoint,
    ModelArtifactLink,
    ModelRecord,
    ModelVersionRecord,
    NewArtifactVersion,
    PipelineRecord,
    RunDeletion,
    RunRecord,
    SecretRecord,
    SessionRecord,
    StackRecord,
    StageChange,
    StepRunRecord,
    StepStart,
    UserRecord,
)

# How long a running run may go without a heartbeat before it is declared dead.
STALE_AFTER_SECONDS = 120.0
HEARTBEAT_SECONDS = 30.0
# How long a ``submitted`` run (handed to an engine, none of its steps started yet, no
# process of ours beating for it) may wait before it is declared dead: engines queue runs
# (a scheduler's slots, pods waiting for a node), so silence is no sign of death here.
SUBMITTED_STALE_AFTER_SECONDS = 3600.0


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
    def mark_running(
        self, step_run_id: str, *, started_at: float, logs_uri: str | None = None
    ) -> None:
        """Show a step run as ``running`` (only while it is still ``pending``). The launcher
        calls this only for steps still running after a moment, so short steps cost one write.
        ``logs_uri``: where the step's logs are written while it runs (readers follow them
        there until the step ends)."""

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
        metrics: Sequence[MetricPoint] = (),
    ) -> dict[str, ArtifactVersionRecord]:
        """Atomically: record how the step started (inputs, cache key, ...), create (or reuse)
        the output artifact versions, link them, attach the metadata ``(entity_type, entity_id
        or output name, values)``, record the metric points the step logged (each name's last
        value also as metadata of the step run and its run, see ``MetricWriter``) and set the
        final status."""

    @abc.abstractmethod
    def register_artifact_version(
        self, new: NewArtifactVersion, *, at: float
    ) -> ArtifactVersionRecord:
        """A new version of ``new.artifact_name`` that no step run produced (data from outside
        the pipelines, such as a DVC-tracked file), with its metadata; the bytes are already
        stored at ``new.uri``. Step runs that read it list it as an input, so lineage reaches
        it; deleting runs keeps it."""

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
        metrics: Sequence[MetricPoint] = (),
    ) -> None:
        """Record how a step run that did not complete ended: ``failed`` with its error, or
        ``stopped`` (interrupted) with the reason, keeping its inputs, logs, metadata and the
        metric points it logged before it ended."""

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
    def claim_step_run(
        self,
        step_run_id: str,
        *,
        at: float,
        host: str,
        pid: int,
        environment: Mapping[str, Any],
    ) -> None:
        """A worker in another process takes a step run: it records where it runs (host, pid,
        its environment), its first heartbeat, and shows it ``running`` if still pending."""

    @abc.abstractmethod
    def step_heartbeat(self, step_run_ids: Sequence[str], at: float) -> None:
        """Workers beat for the step runs they run (those still ``pending``/``running``);
        a run with a step that beat recently is alive wherever its steps run."""

    @abc.abstractmethod
    def add_metadata(
        self, entity_type: str, entity_id: str, values: Mapping[str, Any], at: float
    ) -> None: ...

    @abc.abstractmethod
    def reap_dead_runs(self, now: float, *, stale_after: float = STALE_AFTER_SECONDS) -> list[str]:
        """Mark runs whose process died (stale heartbeat, or a dead pid on this host) as
        ``failed``, unless one of their step runs beat within ``stale_after`` (a worker
        elsewhere still runs it); returns their ids. A ``submitted`` run (none of its steps
        started) is dead only after ``SUBMITTED_STALE_AFTER_SECONDS`` without a beat."""

    @abc.abstractmethod
    def request_stop(self, run_id: str, *, at: float) -> str:
        """Ask for a run to stop: a run not finished yet becomes ``stopping`` (what runs it,
        the orchestrating process or the workers of an engine, ends it ``stopped``). Returns
        the run's status after the call (its final status when it had already ended).
        NotFoundError for an unknown run."""


class RunDeleter(abc.ABC):
    """Deletes runs together with what only they hold."""

    @abc.abstractmethod
    def delete_runs(
        self, run_ids: Sequence[str], *, force: bool = False, dry_run: bool = False
    ) -> RunDeletion:
        """In one transaction, delete the runs (ids), their step runs, those step runs' input
        and output edges, the metadata, metric points and log rows of all of them, and the
        artifact versions that only these runs produced and no other run used. A version these runs produced
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
        experiment: str | None = None,
    ) -> list[RunRecord]:
        """Newest first."""

    @abc.abstractmethod
    def count_runs(
        self,
        *,
        pipeline: str | None = None,
        status: str | None = None,
        experiment: str | None = None,
    ) -> int: ...

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


class MetricWriter(abc.ABC):
    """Records metric series outside a step's own transaction (a step's points are written
    with its outcome: ``RunWriter.publish_step_run`` / ``fail_step_run``). Wherever points are
    written, the last value of each name also becomes metadata of the run (and of the step
    run, for points a step run logged), so listings that show metadata show it."""

    @abc.abstractmethod
    def add_metric_points(self, points: Sequence[MetricPoint]) -> None:
        """Record points in one transaction; a point whose ``step`` is None gets the next step
        of its name in its run (one more than the highest so far, 0 for the first).
        NotFoundError for an unknown run."""


class MetricReader(abc.ABC):
    """Reads metric series and the experiments runs are grouped in."""

    @abc.abstractmethod
    def metric_history(
        self, run_id: str, name: str, *, step_run_id: str | None = None
    ) -> list[MetricPoint]:
        """Every point of metric ``name`` in a run (or one of its step runs), by step, then in
        the order they were logged; empty when there are none."""

    @abc.abstractmethod
    def metric_names(self, run_ids: Sequence[str]) -> dict[str, list[str]]:
        """run id → the names of the metric series it has, sorted."""

    @abc.abstractmethod
    def list_experiments(self) -> list[ExperimentRecord]:
        """Every experiment with its number of runs, most recently run first."""


class ModelRegistry(abc.ABC):
    """Models, their numbered (and optionally named) versions, the artifact versions linked to
    each version, and stages (``staging`` and ``production`` held by one version of a model at
    a time, ``archived`` by any number) with their history. Metadata of a version goes through
    ``add_metadata``/``get_metadata`` with the entity type ``model_version``."""

    @abc.abstractmethod
    def save_model(
        self,
        name: str,
        *,
        description: str | None = None,
        license: str | None = None,
        tags: Sequence[str] = (),
        details: Mapping[str, str] | None = None,
        at: float,
    ) -> ModelRecord:
        """Create a model, or update the fields given (not None; tags are added)."""

    @abc.abstractmethod
    def get_model(self, name: str) -> ModelRecord:
        """By name; NotFoundError (with the closest names) otherwise."""

    @abc.abstractmethod
    def list_models(self) -> list[ModelRecord]:
        """Every model, by name."""

    @abc.abstractmethod
    def create_model_version(
        self,
        model_name: str,
        *,
        name: str | None = None,
        description: str | None = None,
        tags: Sequence[str] = (),
        run_id: str | None = None,
        at: float,
    ) -> ModelVersionRecord:
        """The model's next numbered version (numbers are never given twice), named ``name``
        if given (StoreError if that name is taken). NotFoundError for an unknown model."""

    @abc.abstractmethod
    def get_model_version(self, model_name: str, ref: str | int) -> ModelVersionRecord:
        """A version by number (``3`` or ``"3"``), stage (``"production"``), ``"latest"``,
        name, or id; NotFoundError saying what the model has otherwise."""

    @abc.abstractmethod
    def list_model_versions(
        self, model_name: str, *, stage: str | None = None
    ) -> list[ModelVersionRecord]:
        """Newest first; only those in ``stage`` if given."""

    @abc.abstractmethod
    def set_model_version_stage(
        self,
        model_version_id: str,
        stage: str | None,
        *,
        force: bool = False,
        user: str,
        at: float,
        note: str | None = None,
    ) -> ModelVersionRecord:
        """Move a version to ``stage`` (None or ``"none"``: out of every stage), recording
        who and when. If another version holds an exclusive stage, StoreError naming it,
        unless ``force``: that version is then archived (recorded in its history too)."""

    @abc.abstractmethod
    def get_stage_history(self, model_version_id: str) -> list[StageChange]:
        """The version's stage changes, oldest first."""

    @abc.abstractmethod
    def link_model_artifacts(
        self, model_version_id: str, links: Mapping[str, str], *, at: float
    ) -> None:
        """Link artifact versions (id → kind: model, data or deployment) to a model version;
        a link that exists already keeps its kind."""

    @abc.abstractmethod
    def list_model_artifacts(self, model_version_id: str) -> list[ModelArtifactLink]:
        """The artifact versions linked to a model version, in the order they were linked."""

    @abc.abstractmethod
    def find_models_with_artifact(self, artifact_name: str) -> list[str]:
        """The names of the models that have a version linked to a version of this artifact."""

    @abc.abstractmethod
    def delete_model_version(self, model_version_id: str, *, force: bool = False) -> None:
        """Delete a version with its links, stage history and metadata (the artifact
        versions stay). Refused (StoreError) for a version in ``production`` unless ``force``."""

    @abc.abstractmethod
    def delete_model(self, name: str, *, force: bool = False) -> list[ModelVersionRecord]:
        """Delete a model and all its versions (returned); refused (StoreError) while one is
        in ``production`` unless ``force``."""


class UserDirectory(abc.ABC):
    """The server's users (name, role, argon2 password hash), their API tokens (kept as a
    SHA-256 hash) and dashboard sessions (the cookie's SHA-256, its CSRF value, its expiry),
    and the failed-login counters that rate-limit logins. The store never sees a password or
    a token in clear; hashing is the server's (``gristmill.server.credentials``)."""

    @abc.abstractmethod
    def create_user(self, name: str, *, role: str, password_hash: str, at: float) -> UserRecord:
        """StoreError if a user of that name exists."""

    @abc.abstractmethod
    def get_user(self, name: str) -> UserRecord:
        """NotFoundError (with the closest names) for an unknown user."""

    @abc.abstractmethod
    def list_users(self) -> list[UserRecord]:
        """Every user, by name."""

    @abc.abstractmethod
    def update_user(
        self,
        name: str,
        *,
        role: str | None = None,
        password_hash: str | None = None,
        disabled: bool | None = None,
        at: float,
    ) -> UserRecord:
        """Change the fields given (not None). A new password or ``disabled`` ends the
        user's sessions."""

    @abc.abstractmethod
    def delete_user(self, name: str) -> None:
        """Delete a user with their tokens and sessions; NotFoundError for an unknown user."""

    @abc.abstractmethod
    def create_api_token(self, token: ApiTokenRecord) -> None:
        """StoreError if the user has a token of that name that is not revoked."""

    @abc.abstractmethod
    def find_api_token(self, token_hash: str) -> ApiTokenRecord | None:
        """The token with this hash (revoked or expired ones too: the caller checks)."""

    @abc.abstractmethod
    def get_api_token(self, token_id: str) -> ApiTokenRecord:
        """By id or unique id prefix; NotFoundError otherwise."""

    @abc.abstractmethod
    def list_api_tokens(
        self, *, user: str | None = None, include_revoked: bool = False
    ) -> list[ApiTokenRecord]:
        """Newest first; one user's if ``user`` is given."""

    @abc.abstractmethod
    def touch_api_token(self, token_id: str, at: float) -> None:
        """Record that the token was used at ``at``."""

    @abc.abstractmethod
    def revoke_api_token(self, token_id: str, at: float) -> ApiTokenRecord:
        """Revoke a token (it stays listed as revoked); NotFoundError for an unknown id."""

    @abc.abstractmethod
    def create_session(self, session: SessionRecord) -> None: ...

    @abc.abstractmethod
    def find_session(self, session_hash: str) -> SessionRecord | None:
        """The session with this hash (expired ones too: the caller checks)."""

    @abc.abstractmethod
    def touch_session(self, session_id: str, at: float) -> None: ...

    @abc.abstractmethod
    def end_session(self, session_id: str) -> None:
        """Delete a session (logging out); nothing happens for an unknown id."""

    @abc.abstractmethod
    def list_sessions(self, *, user: str | None = None) -> list[SessionRecord]:
        """Sessions not yet deleted (expired ones too), newest first."""

    @abc.abstractmethod
    def end_sessions(self, *, user: str | None = None, expired_before: float | None = None) -> int:
        """Delete a user's sessions, or those that expired before a time; how many."""

    @abc.abstractmethod
    def record_login_failure(self, key: str, at: float, *, window: float) -> tuple[int, float]:
        """Count a failed login for ``key`` (``user:NAME`` or ``address:IP``); failures older
        than ``window`` seconds before ``at`` start the count again. Returns (failures in a
        row, time of the first of them)."""

    @abc.abstractmethod
    def login_failures(self, key: str) -> tuple[int, float | None]:
        """(failures in a row, time of the latest) for ``key``; (0, None) when there are none."""

    @abc.abstractmethod
    def clear_login_failures(self, key: str) -> None: ...


class MetadataStore(
    RunWriter,
    RunReader,
    RunDeleter,
    LineageReader,
    StackCatalog,
    SecretVault,
    MetricWriter,
    MetricReader,
    ModelRegistry,
    UserDirectory,
):
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
