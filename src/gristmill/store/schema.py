"""The metadata store's tables (SQLAlchemy Core). Alembic migrations under ``migrations/`` must
produce exactly this schema (their newest revision is ``migrations.HEAD_REVISION``); a test
compares them. Times are UTC epoch seconds (floats), ids are 32-char hex strings, JSON columns
hold canonical JSON text."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

ID = String(32)

pipelines = Table(
    "pipelines",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("created_at", Float, nullable=False),
)

pipeline_versions = Table(
    "pipeline_versions",
    metadata,
    Column("id", ID, primary_key=True),
    Column("pipeline_id", ID, ForeignKey("pipelines.id"), nullable=False),
    Column("spec_hash", String(64), nullable=False),
    Column("spec", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    UniqueConstraint("pipeline_id", "spec_hash"),
)

runs = Table(
    "runs",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("pipeline_id", ID, ForeignKey("pipelines.id"), nullable=False),
    Column("pipeline_version_id", ID, ForeignKey("pipeline_versions.id"), nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("started_at", Float),
    Column("ended_at", Float),
    Column("heartbeat_at", Float),
    Column("host", String(255)),
    Column("pid", Integer),
    Column("orchestrator", String(64)),
    Column("stack", Text),
    Column("config", Text),
    Column("environment", Text),
    Column("tags", Text),
    Column("error", Text),
    # The experiment the run is grouped in (the pipeline's name unless chosen); migration 0004.
    Column("experiment", String(255)),
    Index(None, "created_at"),
    Index(None, "pipeline_id", "created_at"),
    Index(None, "status"),
    Index(None, "experiment", "created_at"),
)

step_runs = Table(
    "step_runs",
    metadata,
    Column("id", ID, primary_key=True),
    Column("run_id", ID, ForeignKey("runs.id"), nullable=False),
    Column("name", String(255), nullable=False),
    Column("position", Integer, nullable=False),
    Column("source", String(512), nullable=False),
    Column("status", String(16), nullable=False),
    Column("cache_key", String(64)),
    Column("code_hash", String(64)),
    Column("parameters", Text),
    Column("created_at", Float, nullable=False),
    Column("started_at", Float),
    Column("ended_at", Float),
    Column("attempts", Integer, nullable=False, default=0),
    Column("cached_from", ID),
    Column("error", Text),
    # The worker that ran it and its heartbeat (remote orchestrators); migration 0006.
    Column("host", String(255)),
    Column("pid", Integer),
    Column("heartbeat_at", Float),
    Column("environment", Text),
    UniqueConstraint("run_id", "name"),
    Index(None, "cache_key", "status"),
)

artifacts = Table(
    "artifacts",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("created_at", Float, nullable=False),
    # The highest version number given so far: it only grows, so the number of a deleted
    # version is never given again.
    Column("last_version", Integer, nullable=False, server_default="0"),
)

artifact_versions = Table(
    "artifact_versions",
    metadata,
    Column("id", ID, primary_key=True),
    Column("artifact_id", ID, ForeignKey("artifacts.id"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("uri", Text, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("materializer", String(128), nullable=False),
    Column("data_type", String(255), nullable=False),
    Column("size", Integer, nullable=False),
    Column("preview", Text),
    Column("producer_step_run_id", ID, ForeignKey("step_runs.id")),
    Column("created_at", Float, nullable=False),
    UniqueConstraint("artifact_id", "version"),
    Index(None, "created_at"),
    # Versions of the same bytes ("same content as"), and the bytes a cleanup may delete.
    Index(None, "content_hash"),
)

step_run_inputs = Table(
    "step_run_inputs",
    metadata,
    Column("step_run_id", ID, ForeignKey("step_runs.id"), primary_key=True),
    Column("name", String(255), primary_key=True),
    Column("artifact_version_id", ID, ForeignKey("artifact_versions.id"), nullable=False),
    Index(None, "artifact_version_id"),
    # Clustered on the key: one B-tree to write per edge, not a table plus its key index.
    sqlite_with_rowid=False,
)

step_run_outputs = Table(
    "step_run_outputs",
    metadata,
    Column("step_run_id", ID, ForeignKey("step_runs.id"), primary_key=True),
    Column("name", String(255), primary_key=True),
    Column("artifact_version_id", ID, ForeignKey("artifact_versions.id"), nullable=False),
    Index(None, "artifact_version_id"),
    sqlite_with_rowid=False,
)

metadata_entries = Table(
    "metadata",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("entity_type", String(32), nullable=False),
    Column("entity_id", ID, nullable=False),
    Column("key", String(255), nullable=False),
    Column("value", Text, nullable=False),
    Column("value_type", String(16), nullable=False),
    Column("created_at", Float, nullable=False),
    Index(None, "entity_type", "entity_id", "key"),
    Index(None, "key"),
)

logs = Table(
    "logs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", ID, ForeignKey("runs.id"), nullable=False),
    Column("step_run_id", ID, ForeignKey("step_runs.id")),
    Column("uri", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Index(None, "run_id", "step_run_id"),
)

components = Table(
    "components",
    metadata,
    Column("id", ID, primary_key=True),
    Column("type", String(64), nullable=False),
    Column("name", String(255), nullable=False),
    Column("flavor", String(128), nullable=False),
    Column("config", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    UniqueConstraint("type", "name"),
)

stacks = Table(
    "stacks",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

stack_components = Table(
    "stack_components",
    metadata,
    Column("stack_id", ID, ForeignKey("stacks.id"), primary_key=True),
    Column("type", String(64), primary_key=True),
    Column("component_id", ID, ForeignKey("components.id"), nullable=False),
    Index(None, "component_id"),
)

secrets = Table(
    "secrets",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", String(255), nullable=False, unique=True),
    # The key names are not secret (they are listed); the values are one encrypted token.
    Column("keys", Text, nullable=False),
    Column("ciphertext", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

# -- metric series (migration 0004) ----------------------------------------------------------------

metric_points = Table(
    "metric_points",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", ID, ForeignKey("runs.id"), nullable=False),
    # None: logged on the run from outside a step.
    Column("step_run_id", ID, ForeignKey("step_runs.id")),
    Column("name", String(255), nullable=False),
    Column("step", Integer, nullable=False),
    # NULL is NaN (SQLite cannot keep a NaN); infinities are kept as they are.
    Column("value", Float),
    Column("created_at", Float, nullable=False),
    # One series (a run's points of one name, by step) is one range of this index.
    Index(None, "run_id", "name", "step"),
)

# -- model registry (migration 0005) ---------------------------------------------------------------

models = Table(
    "models",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("description", Text),
    Column("license", String(255)),
    Column("tags", Text),
    # Model card fields (audience, use_cases, limitations, trade_offs, ethics) as JSON.
    Column("details", Text),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    # The highest version number given so far: a deleted version's number is never reused.
    Column("last_version", Integer, nullable=False, server_default="0"),
)

model_versions = Table(
    "model_versions",
    metadata,
    Column("id", ID, primary_key=True),
    Column("model_id", ID, ForeignKey("models.id"), nullable=False),
    Column("number", Integer, nullable=False),
    Column("name", String(255)),
    # NULL: in no stage.
    Column("stage", String(16)),
    Column("description", Text),
    Column("tags", Text),
    # The run that created it. Not a foreign key: deleting that run keeps the version.
    Column("run_id", ID),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    UniqueConstraint("model_id", "number"),
    UniqueConstraint("model_id", "name"),
    Index(None, "model_id", "stage"),
)

model_version_artifacts = Table(
    "model_version_artifacts",
    metadata,
    Column("model_version_id", ID, ForeignKey("model_versions.id"), primary_key=True),
    Column("artifact_version_id", ID, ForeignKey("artifact_versions.id"), primary_key=True),
    # model, data or deployment
    Column("kind", String(16), nullable=False),
    Column("created_at", Float, nullable=False),
    Index(None, "artifact_version_id"),
)

model_stage_history = Table(
    "model_stage_history",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model_version_id", ID, ForeignKey("model_versions.id"), nullable=False),
    Column("stage", String(16)),
    Column("previous_stage", String(16)),
    Column("user", String(255), nullable=False),
    Column("at", Float, nullable=False),
    Column("note", Text),
    Index(None, "model_version_id"),
)

# -- server users, API tokens, dashboard sessions, failed logins (migration 0007) ------------------

users = Table(
    "users",
    metadata,
    Column("name", String(255), primary_key=True),
    # viewer, editor or admin
    Column("role", String(16), nullable=False),
    # argon2id, in its own encoded form ($argon2id$v=19$m=...,t=...,p=...$salt$hash)
    Column("password_hash", Text, nullable=False),
    Column("disabled", Boolean, nullable=False, server_default="0"),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", ID, primary_key=True),
    Column("user_name", String(255), ForeignKey("users.name"), nullable=False),
    Column("name", String(255), nullable=False),
    Column("role", String(16), nullable=False),
    # SHA-256 (hex) of the token: tokens are random and long, so a fast hash is enough.
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float),
    Column("last_used_at", Float),
    Column("revoked_at", Float),
    Index(None, "user_name", "created_at"),
)

sessions = Table(
    "sessions",
    metadata,
    Column("id", ID, primary_key=True),
    Column("user_name", String(255), ForeignKey("users.name"), nullable=False),
    # SHA-256 (hex) of the session cookie's value.
    Column("session_hash", String(64), nullable=False, unique=True),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("last_seen_at", Float, nullable=False),
    Column("address", String(255)),
    Index(None, "user_name"),
    Index(None, "expires_at"),
)

# Failed logins in a row, per user name (``user:NAME``) and per client address
# (``address:IP``): kept in the database so every server worker counts the same failures.
login_failures = Table(
    "login_failures",
    metadata,
    Column("key", String(300), primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("first_at", Float, nullable=False),
    Column("last_at", Float, nullable=False),
)
