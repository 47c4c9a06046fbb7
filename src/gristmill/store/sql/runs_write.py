"""The run write path of the SQL store (``RunWriter``): the run and its steps, cache lookups,
each step's outcome in one transaction, heartbeats and dead runs. The hot path: a step costs a
handful of prepared statements; build nothing per call that can be built once."""

from __future__ import annotations

import importlib
import json
import os
import socket
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from gristmill.errors import InvalidMetadataError, NotFoundError, StoreError
from gristmill.store.base import STALE_AFTER_SECONDS, SUBMITTED_STALE_AFTER_SECONDS, RunWriter
from gristmill.store.ids import (
    artifact_id,
    new_artifact_version_id,
    pipeline_id,
    pipeline_version_id,
)
from gristmill.store.metadata_values import dumps, metadata_value
from gristmill.store.records import (
    ArtifactVersionRecord,
    CacheHit,
    Entity,
    MetricPoint,
    NewArtifactVersion,
    RunRecord,
    Status,
    StepRunRecord,
    StepStart,
)
from gristmill.store.sql._lazy import sa
from gristmill.store.sql._lazy import schema as s
from gristmill.store.sql.engine import SQLEngine
from gristmill.store.sql.metrics import INSERT_METADATA, write_points
from gristmill.store.sql.prepared import (
    DriverConnection,
    Prepared,
    StatementConnection,
    dialect_name,
    execute,
    insert_of,
    one_of,
)
from gristmill.store.sql.rows import (
    artifact_version_query,
    artifact_version_record,
    step_run_record,
)
from gristmill.store.sql.versions import claim_version_number

_HOST = socket.gethostname()
# Runs whose heartbeat counts (a run handed to an engine beats through its steps' workers),
# and runs the reaper looks at.
_BEATING = [Status.SUBMITTED, Status.RUNNING, Status.STOPPING]
_LIVE = [Status.PENDING, *_BEATING]


class SQLRunWriter(SQLEngine, RunWriter):
    def __init__(self, url: str) -> None:
        super().__init__(url)
        # Pipeline versions this process knows exist (they are never deleted while it runs).
        self._known_versions: set[str] = set()
        self._known_lock = threading.Lock()

    def create_run(
        self, run: RunRecord, step_runs: Sequence[StepRunRecord], *, spec_json: str
    ) -> None:
        if run.spec_hash is None or run.pipeline_version_id != pipeline_version_id(
            run.pipeline_name, run.spec_hash
        ):
            raise StoreError(
                f"run '{run.name}' must carry its spec_hash and the pipeline_version_id derived "
                "from it (gristmill.store.ids.pipeline_version_id(pipeline_name, spec_hash))"
            )
        version_id = run.pipeline_version_id
        pipeline = pipeline_id(run.pipeline_name)
        row = {
            "id": run.id,
            "name": run.name,
            "pipeline_id": pipeline,
            "pipeline_version_id": version_id,
            "status": run.status,
            "created_at": run.created_at,
            "started_at": run.started_at,
            "heartbeat_at": run.heartbeat_at,
            "host": run.host,
            "pid": run.pid,
            "orchestrator": run.orchestrator,
            "stack": dumps(run.stack),
            "config": dumps(run.config),
            "environment": dumps(run.environment),
            "tags": dumps(run.tags),
            "experiment": run.experiment or run.pipeline_name,
        }
        step_rows = [
            {
                "id": sr.id,
                "run_id": run.id,
                "name": sr.name,
                "position": sr.position,
                "source": sr.source,
                "status": sr.status,
                "created_at": sr.created_at,
                "attempts": 0,
                "parameters": dumps(sr.parameters),
            }
            for sr in step_runs
        ]
        # The first run of a pipeline version writes its rows, in the run's own transaction.
        new_version = version_id not in self._known_versions
        spec_hash = run.spec_hash

        def work(conn: StatementConnection) -> None:
            if new_version:
                now = time.time()
                _insert_missing(
                    conn,
                    "pipelines",
                    {"id": pipeline, "name": run.pipeline_name, "created_at": now},
                )
                _insert_missing(
                    conn,
                    "pipeline_versions",
                    {
                        "id": version_id,
                        "pipeline_id": pipeline,
                        "spec_hash": spec_hash,
                        "spec": spec_json,
                        "created_at": now,
                    },
                )
            execute(conn, _Q.insert_run, row)
            if step_rows:
                execute(conn, _Q.insert_step_runs, step_rows)

        doing = f"recording run '{run.name}'"
        try:
            self._attempts(work, retry_conflicts=False, prepared=True)
        except sa.exc.IntegrityError as exc:
            if self._run_name_taken(run.name):
                raise StoreError(
                    f"a run named '{run.name}' already exists: pick another run name"
                ) from None
            raise self._failure(exc, doing) from exc
        except sa.exc.SQLAlchemyError as exc:
            raise self._failure(exc, doing) from exc
        if new_version:
            with self._known_lock:
                self._known_versions.add(version_id)

    def _run_name_taken(self, name: str) -> bool:
        with self._reading(f"looking up run '{name}'") as conn:
            return (
                conn.execute(sa.select(s.runs.c.id).where(s.runs.c.name == name)).first()
                is not None
            )

    def mark_running(
        self, step_run_id: str, *, started_at: float, logs_uri: str | None = None
    ) -> None:
        def work(conn: StatementConnection) -> None:
            execute(conn, _Q.mark_running, {"step_run_id": step_run_id, "started_at": started_at})
            if logs_uri:
                _insert_log(conn, step_run_id, logs_uri, started_at)

        self._retrying(work, "marking a step run running", prepared=True)

    def find_cached(self, cache_key: str) -> CacheHit | None:
        with self._reading("looking up the cache", prepared=True) as conn:
            row = execute(conn, _Q.find_cached, {"cache_key": cache_key}).first()
            if row is None:
                return None
            return _cache_hit(conn, row)

    def cache_hit_of(self, step_run_id: str) -> CacheHit:
        with self._reading(f"reading step run '{step_run_id}'") as conn:
            row = conn.execute(
                sa.select(s.step_runs).where(s.step_runs.c.id == step_run_id)
            ).first()
            if row is None:
                raise NotFoundError(f"no step run with id '{step_run_id}'")
            return _cache_hit(conn, row)

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
        entries = []
        for entity, ref, values in metadata:
            if entity == Entity.ARTIFACT_VERSION and ref not in outputs:
                raise InvalidMetadataError(
                    f"metadata for output '{ref}', which step run '{step_run_id}' does not "
                    f"produce (its outputs: {', '.join(sorted(outputs)) or 'none'})"
                )
            entries.append((entity, ref, _metadata_rows(values)))

        started = _start_values(step_run_id, start)

        def work(conn: StatementConnection) -> dict[str, ArtifactVersionRecord]:
            if started["inputs"]:
                execute(conn, _Q.insert_inputs, started["inputs"])
            published: dict[str, ArtifactVersionRecord] = {}
            metadata_rows: list[dict[str, Any]] = []
            for name, out in outputs.items():
                if isinstance(out, ArtifactVersionRecord):
                    published[name] = out
                else:
                    published[name] = _publish_version(
                        conn, out, step_run_id, ended_at, metadata_rows
                    )
            if published:
                execute(
                    conn,
                    _Q.insert_outputs,
                    [
                        {"step_run_id": step_run_id, "name": k, "artifact_version_id": v.id}
                        for k, v in published.items()
                    ],
                )
            for entity, ref, rows in entries:
                entity_id = published[ref].id if entity == Entity.ARTIFACT_VERSION else ref
                metadata_rows.extend(
                    {**r, "entity_type": entity, "entity_id": entity_id, "created_at": ended_at}
                    for r in rows
                )
            if metadata_rows:
                execute(conn, INSERT_METADATA, metadata_rows)
            if metrics:
                write_points(conn, metrics)
            if logs_uri:
                _insert_log(conn, step_run_id, logs_uri, ended_at)
            execute(
                conn,
                _Q.finish_step_run,
                {
                    **started["row"],
                    "status": status,
                    "ended_at": ended_at,
                    "attempts": attempts,
                    "cached_from": cached_from,
                    "error": None,
                },
            )
            return published

        return self._retrying(work, "publishing a step run's outputs", prepared=True)

    def register_artifact_version(
        self, new: NewArtifactVersion, *, at: float
    ) -> ArtifactVersionRecord:
        def work(conn: StatementConnection) -> ArtifactVersionRecord:
            metadata_rows: list[dict[str, Any]] = []
            record = _publish_version(conn, new, None, at, metadata_rows)
            if metadata_rows:
                execute(conn, INSERT_METADATA, metadata_rows)
            return record

        return self._retrying(work, "registering an artifact version", prepared=True)

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
        status: str = Status.FAILED,
        metrics: Sequence[MetricPoint] = (),
    ) -> None:
        if status not in (Status.FAILED, Status.STOPPED):
            raise StoreError(
                f"a step run that did not complete is failed or stopped, not {status!r}"
            )
        entries = [
            (entity, ref, _metadata_rows(values))
            for entity, ref, values in metadata
            if entity != Entity.ARTIFACT_VERSION
        ]
        started = _start_values(step_run_id, start)

        def work(conn: StatementConnection) -> None:
            if started["inputs"]:
                execute(conn, _Q.insert_inputs, started["inputs"])
            execute(
                conn,
                _Q.finish_step_run,
                {
                    **started["row"],
                    "status": status,
                    "ended_at": ended_at,
                    "attempts": attempts,
                    "cached_from": None,
                    "error": error,
                },
            )
            rows = [
                {**r, "entity_type": entity, "entity_id": ref, "created_at": ended_at}
                for entity, ref, batch in entries
                for r in batch
            ]
            if rows:
                execute(conn, INSERT_METADATA, rows)
            if metrics:
                write_points(conn, metrics)
            if logs_uri:
                _insert_log(conn, step_run_id, logs_uri, ended_at)

        self._retrying(work, "recording a failed step run", prepared=True)

    def stop_step_runs(
        self, run_id: str, step_names: Sequence[str], *, reason: str, at: float
    ) -> None:
        if not step_names:
            return

        def work(conn: sa.Connection) -> None:
            conn.execute(
                sa.update(s.step_runs)
                .where(
                    s.step_runs.c.run_id == run_id,
                    s.step_runs.c.name.in_(list(step_names)),
                    s.step_runs.c.status.in_([Status.PENDING, Status.RUNNING]),
                )
                .values(status=Status.STOPPED, ended_at=at, error=reason)
            )

        self._retrying(work, "stopping step runs")

    def finish_run(
        self,
        run_id: str,
        *,
        status: str,
        ended_at: float,
        error: str | None = None,
        environment: Mapping[str, Any] | None = None,
    ) -> None:
        values = {
            "run_id": run_id,
            "status": status,
            "ended_at": ended_at,
            "error": error,
            "environment": None if environment is None else dumps(dict(environment)),
        }

        def work(conn: StatementConnection) -> None:
            execute(conn, _Q.finish_run, values)

        self._retrying(work, "finishing a run", prepared=True)

    def heartbeat(self, run_id: str, at: float) -> None:
        def work(conn: StatementConnection) -> None:
            execute(conn, _Q.heartbeat, {"run_id": run_id, "at": at})

        self._retrying(work, "recording a heartbeat", prepared=True)

    def claim_step_run(
        self,
        step_run_id: str,
        *,
        at: float,
        host: str,
        pid: int,
        environment: Mapping[str, Any],
    ) -> None:
        worker = {
            "host": host,
            "pid": pid,
            "heartbeat_at": at,
            "environment": json.dumps(dict(environment), sort_keys=True, default=str),
        }

        def work(conn: sa.Connection) -> None:
            conn.execute(
                sa.update(s.step_runs).where(s.step_runs.c.id == step_run_id).values(**worker)
            )
            conn.execute(
                sa.update(s.step_runs)
                .where(s.step_runs.c.id == step_run_id, s.step_runs.c.status == Status.PENDING)
                .values(status=Status.RUNNING, started_at=at)
            )
            # A run handed to an engine is running once its first step is taken.
            conn.execute(
                sa.update(s.runs)
                .where(
                    s.runs.c.id
                    == sa.select(s.step_runs.c.run_id)
                    .where(s.step_runs.c.id == step_run_id)
                    .scalar_subquery(),
                    s.runs.c.status == Status.SUBMITTED,
                )
                .values(status=Status.RUNNING, heartbeat_at=at)
            )

        self._retrying(work, "recording the worker of a step run")

    def request_stop(self, run_id: str, *, at: float) -> str:
        def work(conn: sa.Connection) -> str | None:
            conn.execute(
                sa.update(s.runs)
                .where(
                    s.runs.c.id == run_id,
                    s.runs.c.status.in_([Status.PENDING, Status.SUBMITTED, Status.RUNNING]),
                )
                .values(status=Status.STOPPING, heartbeat_at=at)
            )
            status = conn.execute(sa.select(s.runs.c.status).where(s.runs.c.id == run_id)).scalar()
            return str(status) if status is not None else None

        status = self._retrying(work, "recording a stop request")
        if status is None:
            raise NotFoundError(f"no run with id '{run_id}'")
        return status

    def step_heartbeat(self, step_run_ids: Sequence[str], at: float) -> None:
        if not step_run_ids:
            return

        def work(conn: sa.Connection) -> None:
            conn.execute(
                sa.update(s.step_runs)
                .where(
                    s.step_runs.c.id.in_(list(step_run_ids)),
                    s.step_runs.c.status.in_([Status.PENDING, Status.RUNNING]),
                )
                .values(heartbeat_at=at)
            )

        self._retrying(work, "recording a step heartbeat")

    def add_metadata(
        self, entity_type: str, entity_id: str, values: Mapping[str, Any], at: float
    ) -> None:
        rows = [
            {**r, "entity_type": entity_type, "entity_id": entity_id, "created_at": at}
            for r in _metadata_rows(values)
        ]
        if not rows:
            return

        def work(conn: sa.Connection) -> None:
            conn.execute(sa.insert(s.metadata_entries), rows)

        self._retrying(work, "adding metadata")

    def reap_dead_runs(self, now: float, *, stale_after: float = STALE_AFTER_SECONDS) -> list[str]:
        with self._reading("looking for dead runs", prepared=True) as conn:
            candidates = execute(conn, _Q.live_runs, {}).all()
        dead: list[tuple[str, str]] = []
        for run_id, host, pid, heartbeat_at, status in (r.values() for r in candidates):
            if host == _HOST and pid and not _pid_alive(pid):
                dead.append((run_id, f"the process running it (pid {pid} on {host}) is gone"))
            elif status == Status.SUBMITTED:
                # Handed to an engine that has not started any of its steps: engines queue
                # runs, so only a long silence means the engine lost it.
                grace = max(stale_after, SUBMITTED_STALE_AFTER_SECONDS)
                if heartbeat_at is not None and now - heartbeat_at > grace:
                    dead.append(
                        (
                            run_id,
                            f"submitted {now - heartbeat_at:.0f}s ago and none of its steps "
                            "ever started: the engine it was handed to did not run it",
                        )
                    )
            elif heartbeat_at is not None and now - heartbeat_at > stale_after:
                dead.append((run_id, f"no heartbeat for {now - heartbeat_at:.0f}s from {host}"))
        if dead:
            # A step still beating on a worker elsewhere keeps its run alive, whatever
            # became of the process that started the run.
            with self._reading("looking for steps still beating") as conn:
                beating = {
                    row[0]
                    for row in conn.execute(
                        sa.select(s.step_runs.c.run_id).where(
                            s.step_runs.c.run_id.in_([run_id for run_id, _ in dead]),
                            s.step_runs.c.status.in_([Status.RUNNING, Status.PENDING]),
                            s.step_runs.c.heartbeat_at > now - stale_after,
                        )
                    )
                }
            dead = [(run_id, reason) for run_id, reason in dead if run_id not in beating]
        if not dead:
            return []

        def work(conn: sa.Connection) -> None:
            for run_id, reason in dead:
                message = f"run died: {reason}"
                done = conn.execute(
                    sa.update(s.runs)
                    .where(s.runs.c.id == run_id, s.runs.c.status.in_(_LIVE))
                    .values(status=Status.FAILED, ended_at=now, error=message)
                ).rowcount
                if not done:
                    continue
                conn.execute(
                    sa.update(s.step_runs)
                    .where(s.step_runs.c.run_id == run_id, s.step_runs.c.status == Status.RUNNING)
                    .values(status=Status.FAILED, ended_at=now, error=message)
                )
                conn.execute(
                    sa.update(s.step_runs)
                    .where(s.step_runs.c.run_id == run_id, s.step_runs.c.status == Status.PENDING)
                    .values(status=Status.STOPPED, ended_at=now, error=message)
                )

        self._retrying(work, "marking dead runs failed")
        return [run_id for run_id, _ in dead]


def _publish_version(
    conn: StatementConnection,
    new: NewArtifactVersion,
    producer: str | None,
    now: float,
    metadata_rows: list[dict[str, Any]],
) -> ArtifactVersionRecord:
    """A new version of ``new.artifact_name``, produced by step run ``producer`` (None: by no
    step run, registered from outside): the next
    number of that artifact (its row is created with the first), a fresh id, and the bytes
    already stored at ``new.uri``, which versions of the same content share. Two statements:
    claiming the number and inserting the row."""
    art_id = artifact_id(new.artifact_name)
    version = claim_version_number(conn, art_id, new.artifact_name, now)
    version_id = new_artifact_version_id()
    execute(
        conn,
        _Q.insert_artifact_version,
        {
            "id": version_id,
            "artifact_id": art_id,
            "version": version,
            "uri": new.uri,
            "content_hash": new.content_hash,
            "materializer": new.materializer,
            "data_type": new.data_type,
            "size": new.size,
            "preview": new.preview,
            "producer_step_run_id": producer,
            "created_at": now,
        },
    )
    metadata_rows.extend(
        {
            **r,
            "entity_type": Entity.ARTIFACT_VERSION,
            "entity_id": version_id,
            "created_at": now,
        }
        for r in _metadata_rows(new.metadata)
    )
    return ArtifactVersionRecord(
        id=version_id,
        artifact_name=new.artifact_name,
        version=version,
        uri=new.uri,
        content_hash=new.content_hash,
        materializer=new.materializer,
        data_type=new.data_type,
        size=new.size,
        created_at=now,
        preview=new.preview,
        producer_step_run_id=producer,
    )


def _insert_log(conn: StatementConnection, step_run_id: str, uri: str, at: float) -> None:
    execute(conn, _Q.insert_log, {"step_run_id": step_run_id, "uri": uri, "created_at": at})


def _cache_hit(conn: StatementConnection, row: Any) -> CacheHit:
    outputs = {
        r.io_name: artifact_version_record(r)
        for r in execute(conn, _Q.outputs_of_step_run, {"step_run_id": row.id}).all()
    }
    logged = {
        r.key: json.loads(r.value)
        for r in execute(
            conn, _Q.metadata_of, {"entity_type": Entity.STEP_RUN, "entity_id": row.id}
        ).all()
    }
    return CacheHit(step_run_record(row), outputs, logged)


def _start_values(step_run_id: str, start: StepStart) -> dict[str, Any]:
    return {
        "row": {
            "step_run_id": step_run_id,
            "started_at": start.started_at,
            "code_hash": start.code_hash,
            "cache_key": start.cache_key,
            "parameters": dumps(start.parameters),
        },
        "inputs": [
            {"step_run_id": step_run_id, "name": k, "artifact_version_id": v}
            for k, v in start.inputs.items()
        ],
    }


def _metadata_rows(values: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for key, value in values.items():
        encoded, kind = metadata_value(key, value)
        rows.append({"key": key, "value": encoded, "value_type": kind})
    return rows


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _insert_missing(conn: StatementConnection, table: str, row: dict[str, Any]) -> None:
    """Insert a row keyed by a derived id unless it is already there."""
    prepared = _INSERT_MISSING.get((table, dialect_name(conn)))
    if prepared is not None:
        execute(conn, prepared, row)
        return
    # Databases without INSERT ... ON CONFLICT: look first (a connection of SQLAlchemy's here).
    assert not isinstance(conn, DriverConnection)
    rows = getattr(s, table)
    if conn.execute(sa.select(rows.c.id).where(rows.c.id == row["id"])).first() is None:
        conn.execute(sa.insert(rows), row)


def _ignoring_conflicts(dialect: str, table: str, *columns: str) -> Prepared:
    def build() -> Any:
        insert = importlib.import_module(f"sqlalchemy.dialects.{dialect}").insert
        values: dict[str, Any] = {c: sa.bindparam(c) for c in columns}
        return insert(getattr(s, table)).values(values).on_conflict_do_nothing()

    return Prepared(f"{table}.insert_missing.{dialect}", build, dialect=dialect)


_INSERT_MISSING = {
    (table, dialect): _ignoring_conflicts(dialect, table, *columns)
    for table, columns in (
        ("pipelines", ("id", "name", "created_at")),
        ("pipeline_versions", ("id", "pipeline_id", "spec_hash", "spec", "created_at")),
    )
    for dialect in ("sqlite", "postgresql")
}


class _Q:
    """The statements of a run, built once: building and caching a new statement object per
    call costs more than executing it."""

    insert_run = Prepared(
        "runs.insert",
        lambda: insert_of(
            s.runs,
            "id",
            "name",
            "pipeline_id",
            "pipeline_version_id",
            "status",
            "created_at",
            "started_at",
            "heartbeat_at",
            "host",
            "pid",
            "orchestrator",
            "stack",
            "config",
            "environment",
            "tags",
            "experiment",
        ),
    )
    insert_step_runs = Prepared(
        "step_runs.insert",
        lambda: insert_of(
            s.step_runs,
            "id",
            "run_id",
            "name",
            "position",
            "source",
            "status",
            "created_at",
            "attempts",
            "parameters",
        ),
    )
    finish_run = Prepared(
        "runs.finish",
        lambda: (
            sa.update(s.runs)
            .where(s.runs.c.id == sa.bindparam("run_id"))
            .values(
                status=sa.bindparam("status"),
                ended_at=sa.bindparam("ended_at"),
                heartbeat_at=sa.bindparam("ended_at"),
                error=sa.bindparam("error"),
                environment=sa.func.coalesce(sa.bindparam("environment"), s.runs.c.environment),
            )
        ),
    )
    heartbeat = Prepared(
        "runs.heartbeat",
        lambda: (
            sa.update(s.runs)
            .where(s.runs.c.id == sa.bindparam("run_id"), one_of(s.runs.c.status, _BEATING))
            .values(heartbeat_at=sa.bindparam("at"))
        ),
    )
    live_runs = Prepared(
        "runs.live",
        lambda: sa.select(
            s.runs.c.id, s.runs.c.host, s.runs.c.pid, s.runs.c.heartbeat_at, s.runs.c.status
        ).where(one_of(s.runs.c.status, _LIVE)),
    )
    mark_running = Prepared(
        "step_runs.mark_running",
        lambda: (
            sa.update(s.step_runs)
            .where(
                s.step_runs.c.id == sa.bindparam("step_run_id"),
                s.step_runs.c.status == Status.PENDING,
            )
            .values(status=Status.RUNNING, started_at=sa.bindparam("started_at"))
        ),
    )
    finish_step_run = Prepared(
        "step_runs.finish",
        lambda: (
            sa.update(s.step_runs)
            .where(s.step_runs.c.id == sa.bindparam("step_run_id"))
            .values(
                status=sa.bindparam("status"),
                started_at=sa.bindparam("started_at"),
                ended_at=sa.bindparam("ended_at"),
                code_hash=sa.bindparam("code_hash"),
                cache_key=sa.bindparam("cache_key"),
                parameters=sa.bindparam("parameters"),
                attempts=sa.bindparam("attempts"),
                cached_from=sa.bindparam("cached_from"),
                error=sa.bindparam("error"),
            )
        ),
    )
    insert_inputs = Prepared(
        "step_run_inputs.insert",
        lambda: insert_of(s.step_run_inputs, "step_run_id", "name", "artifact_version_id"),
    )
    insert_outputs = Prepared(
        "step_run_outputs.insert",
        lambda: insert_of(s.step_run_outputs, "step_run_id", "name", "artifact_version_id"),
    )
    insert_artifact_version = Prepared(
        "artifact_versions.insert",
        lambda: insert_of(
            s.artifact_versions,
            "id",
            "artifact_id",
            "version",
            "uri",
            "content_hash",
            "materializer",
            "data_type",
            "size",
            "preview",
            "producer_step_run_id",
            "created_at",
        ),
    )
    insert_log = Prepared(
        "logs.insert",
        lambda: sa.insert(s.logs).values(
            run_id=sa.select(s.step_runs.c.run_id)
            .where(s.step_runs.c.id == sa.bindparam("step_run_id"))
            .scalar_subquery(),
            step_run_id=sa.bindparam("step_run_id"),
            uri=sa.bindparam("uri"),
            created_at=sa.bindparam("created_at"),
        ),
    )
    find_cached = Prepared(
        "step_runs.find_cached",
        lambda: (
            sa.select(s.step_runs)
            .where(
                s.step_runs.c.cache_key == sa.bindparam("cache_key"),
                s.step_runs.c.status == Status.COMPLETED,
            )
            .order_by(s.step_runs.c.ended_at.desc())
            .limit(1)
        ),
    )
    metadata_of = Prepared(
        "metadata_entries.of",
        lambda: (
            sa.select(s.metadata_entries.c.key, s.metadata_entries.c.value)
            .where(
                s.metadata_entries.c.entity_type == sa.bindparam("entity_type"),
                s.metadata_entries.c.entity_id == sa.bindparam("entity_id"),
            )
            .order_by(s.metadata_entries.c.id)
        ),
    )
    outputs_of_step_run = Prepared(
        "step_run_outputs.of",
        lambda: (
            artifact_version_query()
            .add_columns(s.step_run_outputs.c.name.label("io_name"))
            .join(
                s.step_run_outputs,
                s.step_run_outputs.c.artifact_version_id == s.artifact_versions.c.id,
            )
            .where(s.step_run_outputs.c.step_run_id == sa.bindparam("step_run_id"))
        ),
    )
