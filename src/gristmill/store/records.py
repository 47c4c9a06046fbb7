"""Plain records that cross the metadata store interface. They are deliberately light
(slotted dataclasses, no validation): the hot path creates thousands of them per second."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class Status:
    """Run and step run states: pending → running → completed | failed | cached | stopped.

    Runs only: ``submitted`` (handed to an engine by a submitting orchestrator; no step has
    started yet, no local process runs it) comes before ``running``; ``stopping`` (a stop was
    requested with ``gristmill runs stop``; what runs it ends it ``stopped``) before the end."""

    PENDING = "pending"
    SUBMITTED = "submitted"
    RUNNING = "running"
    STOPPING = "stopping"
    COMPLETED = "completed"
    FAILED = "failed"
    CACHED = "cached"
    STOPPED = "stopped"

    ALL = (PENDING, SUBMITTED, RUNNING, STOPPING, COMPLETED, FAILED, CACHED, STOPPED)
    FINISHED = frozenset({COMPLETED, FAILED, CACHED, STOPPED})
    SUCCEEDED = frozenset({COMPLETED, CACHED})
    # Not finished yet: a run in one of these may still change.
    ACTIVE = frozenset({PENDING, SUBMITTED, RUNNING, STOPPING})


class Entity:
    """The kinds of things metadata attaches to."""

    RUN = "run"
    STEP_RUN = "step_run"
    ARTIFACT_VERSION = "artifact_version"
    MODEL_VERSION = "model_version"
    ALL = (RUN, STEP_RUN, ARTIFACT_VERSION, MODEL_VERSION)


@dataclass
class RunRecord:
    id: str
    name: str
    pipeline_name: str
    pipeline_version_id: str
    status: str
    created_at: float
    started_at: float | None = None
    ended_at: float | None = None
    heartbeat_at: float | None = None
    host: str | None = None
    pid: int | None = None
    orchestrator: str | None = None
    stack: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    error: str | None = None
    spec_hash: str | None = None
    # The experiment the run belongs to; None when written: the pipeline's name.
    experiment: str | None = None


@dataclass
class StepRunRecord:
    id: str
    run_id: str
    name: str
    source: str
    status: str
    created_at: float
    position: int = 0
    cache_key: str | None = None
    code_hash: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    started_at: float | None = None
    ended_at: float | None = None
    attempts: int = 0
    cached_from: str | None = None
    error: str | None = None
    # Set by a worker in another process (remote orchestrators): where the step really ran.
    host: str | None = None
    pid: int | None = None
    heartbeat_at: float | None = None
    environment: dict[str, Any] = field(default_factory=dict)


@dataclass
class ArtifactVersionRecord:
    id: str
    artifact_name: str
    version: int
    uri: str
    content_hash: str
    materializer: str
    data_type: str
    size: int
    created_at: float
    preview: str | None = None
    producer_step_run_id: str | None = None
    run_id: str | None = None


class ArtifactVersionView:
    """The fields of an artifact version record, read-only, for the objects that wrap one (the
    Client's ArtifactVersion, a running step's InputArtifact): one list of them."""

    __slots__ = ()
    _record: ArtifactVersionRecord

    @property
    def id(self) -> str:
        return self._record.id

    @property
    def name(self) -> str:
        return self._record.artifact_name

    @property
    def version(self) -> int:
        return self._record.version

    @property
    def uri(self) -> str:
        return self._record.uri

    @property
    def content_hash(self) -> str:
        return self._record.content_hash

    @property
    def materializer(self) -> str:
        return self._record.materializer

    @property
    def data_type(self) -> str:
        return self._record.data_type

    @property
    def size(self) -> int:
        return self._record.size


@dataclass
class CacheHit:
    """A completed step run whose outputs a new step run can reuse, and what it logged."""

    step_run: StepRunRecord
    outputs: dict[str, ArtifactVersionRecord]
    metadata: dict[str, Any]


@dataclass
class StepStart:
    """How a step run started: recorded with its outcome, in the same transaction."""

    started_at: float
    inputs: dict[str, str]
    code_hash: str
    cache_key: str | None
    parameters: dict[str, Any]


@dataclass
class NewArtifactVersion:
    """What the launcher hands the store to publish one output (the bytes are already stored)."""

    artifact_name: str
    uri: str
    content_hash: str
    materializer: str
    data_type: str
    size: int
    preview: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class MetadataRecord:
    entity_type: str
    entity_id: str
    key: str
    value: Any
    value_type: str
    created_at: float


@dataclass
class PipelineRecord:
    id: str
    name: str
    created_at: float
    version_count: int = 0
    run_count: int = 0
    latest_spec_hash: str | None = None


@dataclass
class LineageGraph:
    """Artifact versions reached from one artifact version, the step runs between them, and
    edges ``(input artifact version, step run, output artifact version)``."""

    root: str
    artifact_versions: dict[str, ArtifactVersionRecord]
    step_runs: dict[str, StepRunRecord]
    edges: list[tuple[str, str, str]]


@dataclass
class ComponentRecord:
    """A registered stack component; ``config`` holds secret references, never their values."""

    id: str
    type: str
    name: str
    flavor: str
    config: dict[str, Any]
    created_at: float
    updated_at: float


@dataclass
class StackRecord:
    id: str
    name: str
    components: dict[str, ComponentRecord]
    created_at: float
    updated_at: float


@dataclass
class SecretRecord:
    name: str
    keys: list[str]
    ciphertext: str
    created_at: float
    updated_at: float


@dataclass
class RunDeletion:
    """What deleting runs removes (or would remove, for a dry run): the runs, their step runs,
    the artifact versions only they produced and no other run used, and the versions they
    produced that stay because other runs also list them as outputs (cache hits)."""

    runs: list[RunRecord]
    step_runs: int
    artifact_versions: list[ArtifactVersionRecord]
    kept_artifact_versions: list[ArtifactVersionRecord] = field(default_factory=list)


@dataclass
class MetricPoint:
    """One point of a metric series: ``name`` at ``step`` (None when written: the next step
    of that name in the run) had ``value`` at time ``at``, logged by a step run of run
    ``run_id`` (``step_run_id`` None: logged on the run from outside a step)."""

    run_id: str
    name: str
    step: int | None
    value: float
    at: float
    step_run_id: str | None = None


@dataclass
class ExperimentRecord:
    """An experiment: the runs grouped under one name (a pipeline's, by default)."""

    name: str
    run_count: int
    first_run_at: float
    last_run_at: float


@dataclass
class ModelRecord:
    """A model in the registry: its description and model card fields (``details``)."""

    id: str
    name: str
    created_at: float
    updated_at: float
    description: str | None = None
    license: str | None = None
    tags: list[str] = field(default_factory=list)
    details: dict[str, str] = field(default_factory=dict)
    version_count: int = 0
    latest_version: int | None = None


@dataclass
class ModelVersionRecord:
    """One version of a model: numbered per model, optionally named, in at most one stage
    (``None`` when in none); ``run_id`` is the run that created it (None when registered by
    hand, or once that run is deleted)."""

    id: str
    model_name: str
    number: int
    created_at: float
    updated_at: float
    name: str | None = None
    stage: str | None = None
    description: str | None = None
    tags: list[str] = field(default_factory=list)
    run_id: str | None = None


@dataclass
class StageChange:
    """One entry of a model version's stage history: who moved it, when, from and to what."""

    model_version_id: str
    stage: str | None
    previous_stage: str | None
    user: str
    at: float
    note: str | None = None


@dataclass
class ModelArtifactLink:
    """An artifact version linked to a model version, as a model, data or deployment artifact."""

    artifact_version: ArtifactVersionRecord
    kind: str
    created_at: float


# -- users, API tokens and dashboard sessions (the server's ``UserDirectory``) ----------------


@dataclass
class UserRecord:
    """A server user: a name, a role (viewer, editor, admin) and an argon2 password hash."""

    name: str
    role: str
    password_hash: str
    created_at: float
    updated_at: float
    disabled: bool = False


@dataclass
class ApiTokenRecord:
    """An API token of a user. Only the SHA-256 of the token is kept; the token itself is
    shown once, when it is created. ``role`` is at most the user's role."""

    id: str
    user: str
    name: str
    role: str
    token_hash: str
    created_at: float
    expires_at: float | None = None
    last_used_at: float | None = None
    revoked_at: float | None = None


@dataclass
class SessionRecord:
    """A dashboard login: the SHA-256 of the session cookie's value, the CSRF value its
    pages send back, and when it expires."""

    id: str
    user: str
    session_hash: str
    csrf_token: str
    created_at: float
    expires_at: float
    last_seen_at: float
    address: str | None = None
