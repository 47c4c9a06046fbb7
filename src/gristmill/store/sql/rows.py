"""Database rows to store records, and the joins that read runs and artifact versions: shared
by the SQL capability modules. Only reads rows; never opens a connection."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from gristmill.store.records import (
    ArtifactVersionRecord,
    ComponentRecord,
    RunRecord,
    SecretRecord,
    StepRunRecord,
)
from gristmill.store.sql._lazy import sa
from gristmill.store.sql._lazy import schema as s
from gristmill.store.sql.engine import loads


def chunks(items: list[str], size: int = 500) -> Iterator[list[str]]:
    """``items`` in slices small enough for an ``IN (...)`` on every database."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def run_query() -> sa.Select[Any]:
    return (
        sa.select(
            s.runs, s.pipelines.c.name.label("pipeline_name"), s.pipeline_versions.c.spec_hash
        )
        .join(s.pipelines, s.pipelines.c.id == s.runs.c.pipeline_id)
        .join(s.pipeline_versions, s.pipeline_versions.c.id == s.runs.c.pipeline_version_id)
    )


def artifact_version_query() -> sa.Select[Any]:
    av = s.artifact_versions
    return (
        sa.select(av, s.artifacts.c.name.label("artifact_name"), s.step_runs.c.run_id)
        .join(s.artifacts, s.artifacts.c.id == av.c.artifact_id)
        .outerjoin(s.step_runs, s.step_runs.c.id == av.c.producer_step_run_id)
    )


def run_record(row: Any) -> RunRecord:
    return RunRecord(
        id=row.id,
        name=row.name,
        pipeline_name=row.pipeline_name,
        pipeline_version_id=row.pipeline_version_id,
        status=row.status,
        created_at=row.created_at,
        started_at=row.started_at,
        ended_at=row.ended_at,
        heartbeat_at=row.heartbeat_at,
        host=row.host,
        pid=row.pid,
        orchestrator=row.orchestrator,
        stack=loads(row.stack, {}),
        config=loads(row.config, {}),
        environment=loads(row.environment, {}),
        tags=loads(row.tags, []),
        error=row.error,
        spec_hash=row.spec_hash,
        experiment=row.experiment or row.pipeline_name,
    )


def step_run_record(row: Any) -> StepRunRecord:
    return StepRunRecord(
        id=row.id,
        run_id=row.run_id,
        name=row.name,
        source=row.source,
        status=row.status,
        created_at=row.created_at,
        position=row.position,
        cache_key=row.cache_key,
        code_hash=row.code_hash,
        parameters=loads(row.parameters, {}),
        started_at=row.started_at,
        ended_at=row.ended_at,
        attempts=row.attempts,
        cached_from=row.cached_from,
        error=row.error,
        host=row.host,
        pid=row.pid,
        heartbeat_at=row.heartbeat_at,
        environment=loads(row.environment, {}),
    )


def artifact_version_record(row: Any) -> ArtifactVersionRecord:
    return ArtifactVersionRecord(
        id=row.id,
        artifact_name=row.artifact_name,
        version=row.version,
        uri=row.uri,
        content_hash=row.content_hash,
        materializer=row.materializer,
        data_type=row.data_type,
        size=row.size,
        created_at=row.created_at,
        preview=row.preview,
        producer_step_run_id=row.producer_step_run_id,
        run_id=row.run_id,
    )


def component_record(row: Any) -> ComponentRecord:
    return ComponentRecord(
        row.id,
        row.type,
        row.name,
        row.flavor,
        loads(row.config, {}),
        row.created_at,
        row.updated_at,
    )


def secret_record(row: Any) -> SecretRecord:
    return SecretRecord(
        row.name, loads(row.keys, []), row.ciphertext, row.created_at, row.updated_at
    )
