"""The metadata store on any SQLAlchemy database: SQLite (WAL, the embedded default),
PostgreSQL, MySQL. Writes are short transactions; on SQLite they take the write lock up front
(BEGIN IMMEDIATE) so concurrent writers wait their turn instead of failing with 'database is
locked'."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Row,
    Table,
    bindparam,
    create_engine,
    event,
    func,
    insert,
    inspect,
    literal,
    select,
    text,
    update,
)
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from gristmill._hashing import hash_json, hash_text
from gristmill.errors import InvalidMetadataError, NotFoundError, StoreError, did_you_mean
from gristmill.store import schema as s
from gristmill.store.base import STALE_AFTER_SECONDS, MetadataStore
from gristmill.store.records import (
    ArtifactVersionRecord,
    CacheHit,
    ComponentRecord,
    Entity,
    LineageGraph,
    MetadataRecord,
    NewArtifactVersion,
    PipelineRecord,
    RunRecord,
    SecretRecord,
    StackRecord,
    Status,
    StepRunRecord,
    StepStart,
)

_WRITE = "gristmill_write"
_RETRIES = 8
_HOST = socket.gethostname()


def artifact_id(name: str) -> str:
    return hash_text("artifact:" + name)[:32]


def artifact_version_id(new: NewArtifactVersion) -> str:
    """Derived from where the content is (its URI holds the store and the content hash): the
    same bytes of the same artifact in the same store are one version. The same bytes in
    another stack's store are another version, which that stack can load."""
    return hash_json([new.artifact_name, new.uri, new.materializer, new.data_type])[:32]


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _loads(value: str | None, default: Any) -> Any:
    return json.loads(value) if value else default


def metadata_value(key: str, value: Any) -> tuple[str, str]:
    """(JSON text, type name) of a metadata value; numpy scalars become Python numbers."""
    if not isinstance(key, str) or not key:
        raise InvalidMetadataError(f"metadata keys must be non-empty strings, got {key!r}")
    if hasattr(value, "item") and callable(value.item) and not isinstance(value, (list, dict)):
        try:
            value = value.item()
        except (TypeError, ValueError):
            pass
    if isinstance(value, bool):
        kind = "bool"
    elif isinstance(value, int):
        kind = "int"
    elif isinstance(value, float):
        kind = "float"
    elif isinstance(value, str):
        kind = "str"
    else:
        kind = "json"
    try:
        return _dumps(value), kind
    except (TypeError, ValueError) as exc:
        raise InvalidMetadataError(
            f"metadata '{key}' = {type(value).__name__} is not JSON ({exc}); log numbers, "
            "strings, bools, lists or dicts of those"
        ) from None


# One per SQLite database URL, shared by every store object of the process that opens it.
_sqlite_writers: dict[str, threading.RLock] = {}


class SQLStore(MetadataStore):
    """A metadata store on a SQLAlchemy URL; the schema is created or migrated on open."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = _create_engine(url)
        self.dialect = self.engine.dialect.name
        # Rows this process knows exist (they are never deleted while it runs).
        self._known_artifacts: set[str] = set()
        self._known_versions: set[str] = set()
        # Registered pipeline versions no run has written yet: id -> spec_hash and spec.
        self._unwritten_versions: dict[str, dict[str, str]] = {}
        self._known_lock = threading.Lock()
        # SQLite has one writer at a time, and a thread that finds the write lock taken sleeps
        # in SQLite's busy handler (1, 2, 5 ... 25 ms steps): when 20 parallel steps finished
        # together, the last waited ~30 ms. Threads of one process queue here instead and are
        # woken at once; other processes still wait through busy_timeout.
        self._sqlite_writer = (
            _sqlite_writers.setdefault(url, threading.RLock()) if self.dialect == "sqlite" else None
        )
        self._ensure_schema()

    def close(self) -> None:
        self.engine.dispose()

    # -- connections and schema ---------------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with self._sqlite_writer or nullcontext(), self.engine.connect() as conn:
            conn.execution_options(**{_WRITE: True})
            with conn.begin():
                yield conn

    def _retrying(self, work: Any, *, retry_conflicts: bool = True) -> Any:
        """Run a write transaction again when a concurrent writer won a race (unique key or
        serialization conflicts on PostgreSQL, a busy SQLite past its timeout)."""
        for attempt in range(_RETRIES):
            try:
                with self._write() as conn:
                    return work(conn)
            except (IntegrityError, OperationalError) as exc:
                transient = _is_transient(exc) and (
                    retry_conflicts or not isinstance(exc, IntegrityError)
                )
                if attempt == _RETRIES - 1 or not transient:
                    raise
                time.sleep(0.01 * (2**attempt))
        raise AssertionError("unreachable")

    def _ensure_schema(self) -> None:
        try:
            current = self._schema_revision()
        except DBAPIError as exc:
            raise StoreError(
                f"cannot open the metadata store at {safe_url(self.url)}: {exc.orig}. Check the "
                "URL (GRISTMILL_STORE_URL or --store) and that the database server is running"
            ) from exc
        if current == s.HEAD_REVISION:
            return
        with self._write() as conn:
            _lock_for_migration(conn)
            current = _read_revision(conn)
            if current is None:
                existing = set(inspect(conn).get_table_names())
                if existing & set(s.metadata.tables):
                    raise StoreError(
                        f"the database at {safe_url(self.url)} has gristmill tables but no "
                        "schema version; point gristmill at an empty database or its own one"
                    )
                s.metadata.create_all(conn)
                conn.execute(
                    text(
                        "CREATE TABLE IF NOT EXISTS alembic_version "
                        "(version_num VARCHAR(32) NOT NULL PRIMARY KEY)"
                    )
                )
                conn.execute(
                    text("INSERT INTO alembic_version VALUES (:v)"), {"v": s.HEAD_REVISION}
                )
                return
            if current == s.HEAD_REVISION:
                return
        self._migrate(current)

    def _schema_revision(self) -> str | None:
        with self.engine.connect() as conn:
            return _read_revision(conn)

    def _migrate(self, current: str) -> None:
        from gristmill.store.migrations import known_revisions, upgrade

        if current not in known_revisions():
            raise StoreError(
                f"the metadata store at {safe_url(self.url)} has schema revision '{current}', "
                f"which this gristmill does not know (its newest is '{s.HEAD_REVISION}'): "
                "upgrade gristmill (pip install -U gristmill)"
            )
        with self.engine.connect() as conn:
            upgrade(conn)
            conn.commit()

    # -- writing ------------------------------------------------------------------------------

    def register_pipeline_version(self, name: str, spec_hash: str, spec_json: str) -> str:
        """The version's id at once; its row is written by the first ``create_run`` that uses
        it, in that run's transaction (one write less for the first run of a pipeline)."""
        version_id = hash_text(f"pipeline-version:{name}:{spec_hash}")[:32]
        if version_id not in self._known_versions:
            self._unwritten_versions[version_id] = {"spec_hash": spec_hash, "spec": spec_json}
        return version_id

    def create_run(self, run: RunRecord, step_runs: Sequence[StepRunRecord]) -> None:
        pipeline_id = hash_text("pipeline:" + run.pipeline_name)[:32]
        row = {
            "id": run.id,
            "name": run.name,
            "pipeline_id": pipeline_id,
            "pipeline_version_id": run.pipeline_version_id,
            "status": run.status,
            "created_at": run.created_at,
            "started_at": run.started_at,
            "heartbeat_at": run.heartbeat_at,
            "host": run.host,
            "pid": run.pid,
            "orchestrator": run.orchestrator,
            "stack": _dumps(run.stack),
            "config": _dumps(run.config),
            "environment": _dumps(run.environment),
            "tags": _dumps(run.tags),
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
                "parameters": _dumps(sr.parameters),
            }
            for sr in step_runs
        ]

        version = self._unwritten_versions.get(run.pipeline_version_id)

        def work(conn: Connection) -> None:
            if version is not None:
                now = time.time()
                pipeline = {"id": pipeline_id, "name": run.pipeline_name, "created_at": now}
                self._insert_missing(conn, s.pipelines, pipeline)
                self._insert_missing(
                    conn,
                    s.pipeline_versions,
                    {
                        "id": run.pipeline_version_id,
                        "pipeline_id": pipeline_id,
                        **version,
                        "created_at": now,
                    },
                )
            conn.execute(insert(s.runs), row)
            if step_rows:
                conn.execute(insert(s.step_runs), step_rows)

        try:
            self._retrying(work, retry_conflicts=False)
            if version is not None:
                self._known_versions.add(run.pipeline_version_id)
                self._unwritten_versions.pop(run.pipeline_version_id, None)
        except IntegrityError:
            if self._run_name_taken(run.name):
                raise StoreError(
                    f"a run named '{run.name}' already exists: pick another run name"
                ) from None
            raise

    def _run_name_taken(self, name: str) -> bool:
        with self.engine.connect() as conn:
            return (
                conn.execute(select(s.runs.c.id).where(s.runs.c.name == name)).first() is not None
            )

    def mark_running(self, step_run_id: str, *, started_at: float) -> None:
        def work(conn: Connection) -> None:
            _execute(conn, _Q.mark_running, {"step_run_id": step_run_id, "started_at": started_at})

        self._retrying(work)

    def find_cached(self, cache_key: str) -> CacheHit | None:
        with self.engine.connect() as conn:
            row = _execute(conn, _Q.find_cached, {"cache_key": cache_key}).first()
            if row is None:
                return None
            return _cache_hit(conn, row)

    def cache_hit_of(self, step_run_id: str) -> CacheHit:
        with self.engine.connect() as conn:
            row = conn.execute(select(s.step_runs).where(s.step_runs.c.id == step_run_id)).first()
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
    ) -> dict[str, ArtifactVersionRecord]:
        entries = [(entity, ref, _metadata_rows(values)) for entity, ref, values in metadata]
        new_artifacts: set[str] = set()

        started = _start_values(step_run_id, start)

        def work(conn: Connection) -> dict[str, ArtifactVersionRecord]:
            new_artifacts.clear()
            if started["inputs"]:
                _execute(conn, _Q.insert_inputs, started["inputs"])
            published: dict[str, ArtifactVersionRecord] = {}
            metadata_rows: list[dict[str, Any]] = []
            for name, out in outputs.items():
                if isinstance(out, ArtifactVersionRecord):
                    published[name] = out
                else:
                    published[name] = self._publish_version(
                        conn, out, step_run_id, ended_at, metadata_rows, new_artifacts
                    )
            if published:
                _execute(
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
                _execute(conn, _Q.insert_metadata, metadata_rows)
            if logs_uri:
                self._insert_log(conn, step_run_id, logs_uri, ended_at)
            _execute(
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

        result: dict[str, ArtifactVersionRecord] = self._retrying(work)
        # Remembered only once committed: a rolled-back insert must be tried again.
        with self._known_lock:
            self._known_artifacts.update(new_artifacts)
        return result

    def _publish_version(
        self,
        conn: Connection,
        new: NewArtifactVersion,
        producer: str,
        now: float,
        metadata_rows: list[dict[str, Any]],
        new_artifacts: set[str],
    ) -> ArtifactVersionRecord:
        version_id = artifact_version_id(new)
        existing = _execute(conn, _Q.artifact_version_by_id, {"id": version_id}).first()
        if existing is not None:
            return _artifact_version(existing)
        art_id = artifact_id(new.artifact_name)
        if new.artifact_name not in self._known_artifacts:
            self._insert_missing(
                conn, s.artifacts, {"id": art_id, "name": new.artifact_name, "created_at": now}
            )
            new_artifacts.add(new.artifact_name)
        version = _execute(conn, _Q.next_version, {"artifact_id": art_id}).scalar_one()
        _execute(
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

    def _insert_missing(self, conn: Connection, table: Table, row: dict[str, Any]) -> None:
        """Insert a row keyed by a derived id unless it is already there."""
        if self.dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            conn.execute(sqlite_insert(table).on_conflict_do_nothing(), row)
            return
        if self.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as postgresql_insert

            conn.execute(postgresql_insert(table).on_conflict_do_nothing(), row)
            return
        if conn.execute(select(table.c.id).where(table.c.id == row["id"])).first() is None:
            conn.execute(insert(table), row)

    def _insert_log(self, conn: Connection, step_run_id: str, uri: str, at: float) -> None:
        _execute(conn, _Q.insert_log, {"step_run_id": step_run_id, "uri": uri, "created_at": at})

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
    ) -> None:
        entries = [
            (entity, ref, _metadata_rows(values))
            for entity, ref, values in metadata
            if entity != Entity.ARTIFACT_VERSION
        ]
        started = _start_values(step_run_id, start)

        def work(conn: Connection) -> None:
            if started["inputs"]:
                _execute(conn, _Q.insert_inputs, started["inputs"])
            _execute(
                conn,
                _Q.finish_step_run,
                {
                    **started["row"],
                    "status": Status.FAILED,
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
                conn.execute(insert(s.metadata_entries), rows)
            if logs_uri:
                self._insert_log(conn, step_run_id, logs_uri, ended_at)

        self._retrying(work)

    def stop_step_runs(
        self, run_id: str, step_names: Sequence[str], *, reason: str, at: float
    ) -> None:
        if not step_names:
            return

        def work(conn: Connection) -> None:
            conn.execute(
                update(s.step_runs)
                .where(
                    s.step_runs.c.run_id == run_id,
                    s.step_runs.c.name.in_(list(step_names)),
                    s.step_runs.c.status.in_([Status.PENDING, Status.RUNNING]),
                )
                .values(status=Status.STOPPED, ended_at=at, error=reason)
            )

        self._retrying(work)

    def finish_run(
        self,
        run_id: str,
        *,
        status: str,
        ended_at: float,
        error: str | None = None,
        environment: Mapping[str, Any] | None = None,
    ) -> None:
        values: dict[str, Any] = {
            "status": status,
            "ended_at": ended_at,
            "heartbeat_at": ended_at,
            "error": error,
        }
        if environment is not None:
            values["environment"] = _dumps(dict(environment))

        def work(conn: Connection) -> None:
            conn.execute(update(s.runs).where(s.runs.c.id == run_id).values(**values))

        self._retrying(work)

    def heartbeat(self, run_id: str, at: float) -> None:
        def work(conn: Connection) -> None:
            conn.execute(
                update(s.runs)
                .where(s.runs.c.id == run_id, s.runs.c.status == Status.RUNNING)
                .values(heartbeat_at=at)
            )

        self._retrying(work)

    def add_metadata(
        self, entity_type: str, entity_id: str, values: Mapping[str, Any], at: float
    ) -> None:
        rows = [
            {**r, "entity_type": entity_type, "entity_id": entity_id, "created_at": at}
            for r in _metadata_rows(values)
        ]
        if not rows:
            return

        def work(conn: Connection) -> None:
            conn.execute(insert(s.metadata_entries), rows)

        self._retrying(work)

    def reap_dead_runs(self, now: float, *, stale_after: float = STALE_AFTER_SECONDS) -> list[str]:
        with self.engine.connect() as conn:
            candidates = conn.execute(
                select(s.runs.c.id, s.runs.c.host, s.runs.c.pid, s.runs.c.heartbeat_at).where(
                    s.runs.c.status.in_([Status.RUNNING, Status.PENDING])
                )
            ).all()
        dead: list[tuple[str, str]] = []
        for run_id, host, pid, heartbeat_at in candidates:
            if host == _HOST and pid and not _pid_alive(pid):
                dead.append((run_id, f"the process running it (pid {pid} on {host}) is gone"))
            elif heartbeat_at is not None and now - heartbeat_at > stale_after:
                dead.append((run_id, f"no heartbeat for {now - heartbeat_at:.0f}s from {host}"))
        if not dead:
            return []

        def work(conn: Connection) -> None:
            for run_id, reason in dead:
                message = f"run died: {reason}"
                done = conn.execute(
                    update(s.runs)
                    .where(
                        s.runs.c.id == run_id, s.runs.c.status.in_([Status.RUNNING, Status.PENDING])
                    )
                    .values(status=Status.FAILED, ended_at=now, error=message)
                ).rowcount
                if not done:
                    continue
                conn.execute(
                    update(s.step_runs)
                    .where(s.step_runs.c.run_id == run_id, s.step_runs.c.status == Status.RUNNING)
                    .values(status=Status.FAILED, ended_at=now, error=message)
                )
                conn.execute(
                    update(s.step_runs)
                    .where(s.step_runs.c.run_id == run_id, s.step_runs.c.status == Status.PENDING)
                    .values(status=Status.STOPPED, ended_at=now, error=message)
                )

        self._retrying(work)
        return [run_id for run_id, _ in dead]

    # -- reading ------------------------------------------------------------------------------

    def get_run(self, ref: str) -> RunRecord:
        query = _run_query()
        with self.engine.connect() as conn:
            row = conn.execute(query.where(s.runs.c.id == ref)).first()
            if row is None:
                row = conn.execute(query.where(s.runs.c.name == ref)).first()
            if row is None and len(ref) >= 4:
                rows = conn.execute(
                    query.where(s.runs.c.id.startswith(ref, autoescape=True)).limit(2)
                ).all()
                if len(rows) > 1:
                    raise NotFoundError(f"run id prefix '{ref}' is ambiguous: give more characters")
                row = rows[0] if rows else None
            if row is None:
                names = conn.execute(
                    select(s.runs.c.name).order_by(s.runs.c.created_at.desc()).limit(200)
                ).scalars()
                raise NotFoundError(
                    f"no run with id or name '{ref}'{did_you_mean(ref, names)}; "
                    "`gristmill runs list` shows the runs"
                )
        return _run(row)

    def list_runs(
        self,
        *,
        pipeline: str | None = None,
        status: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[RunRecord]:
        # The page of ids first, from the runs' own (created_at) index; then their rows with the
        # pipeline's name: joining first lets the planner sort every run of the pipeline.
        newest = s.runs.c.created_at.desc()
        page = (
            _filter_runs(select(s.runs.c.id), pipeline, status)
            .order_by(newest)
            .limit(limit)
            .offset(offset)
        )
        query = _run_query().where(s.runs.c.id.in_(page.scalar_subquery())).order_by(newest)
        with self.engine.connect() as conn:
            return [_run(r) for r in conn.execute(query)]

    def count_runs(self, *, pipeline: str | None = None, status: str | None = None) -> int:
        query = _filter_runs(select(func.count()).select_from(s.runs), pipeline, status)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def get_step_runs(self, run_id: str) -> list[StepRunRecord]:
        query = (
            select(s.step_runs)
            .where(s.step_runs.c.run_id == run_id)
            .order_by(s.step_runs.c.position)
        )
        with self.engine.connect() as conn:
            return [_step_run(r) for r in conn.execute(query)]

    def get_step_run(self, step_run_id: str) -> StepRunRecord:
        with self.engine.connect() as conn:
            row = conn.execute(select(s.step_runs).where(s.step_runs.c.id == step_run_id)).first()
        if row is None:
            raise NotFoundError(f"no step run with id '{step_run_id}'")
        return _step_run(row)

    def get_step_run_io(
        self, step_run_ids: Sequence[str]
    ) -> dict[str, tuple[dict[str, ArtifactVersionRecord], dict[str, ArtifactVersionRecord]]]:
        with self.engine.connect() as conn:
            inputs = _io_rows(conn, s.step_run_inputs, step_run_ids)
            outputs = _io_rows(conn, s.step_run_outputs, step_run_ids)
        return {i: (inputs.get(i, {}), outputs.get(i, {})) for i in step_run_ids}

    def get_artifact_version(self, ref: str) -> ArtifactVersionRecord:
        query = _artifact_version_query()
        with self.engine.connect() as conn:
            row: Row[Any] | None = None
            name, sep, version = ref.rpartition(":")
            if sep and version.isdigit():
                row = conn.execute(
                    query.where(
                        s.artifacts.c.name == name, s.artifact_versions.c.version == int(version)
                    )
                ).first()
            if row is None:
                row = conn.execute(query.where(s.artifact_versions.c.id == ref)).first()
            if row is None:
                row = conn.execute(
                    query.where(s.artifacts.c.name == ref)
                    .order_by(s.artifact_versions.c.version.desc())
                    .limit(1)
                ).first()
            if row is None and len(ref) >= 4:
                rows = conn.execute(
                    query.where(s.artifact_versions.c.id.startswith(ref, autoescape=True)).limit(2)
                ).all()
                if len(rows) > 1:
                    raise NotFoundError(
                        f"artifact version id prefix '{ref}' is ambiguous: give more characters"
                    )
                row = rows[0] if rows else None
            if row is None:
                names = conn.execute(select(s.artifacts.c.name)).scalars().all()
                raise NotFoundError(
                    f"no artifact version '{ref}'{did_you_mean(name if sep else ref, names)}; give an "
                    "id, NAME (the latest version) or NAME:VERSION (`gristmill artifacts list`)"
                )
        return _artifact_version(row)

    def list_artifact_versions(
        self,
        *,
        name: str | None = None,
        run_id: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[ArtifactVersionRecord]:
        query = _artifact_version_query()
        newest_first = s.artifact_versions.c.created_at.desc()
        if name is not None:
            # By the artifact's id and version, newest first: the (artifact_id, version) index
            # answers it, where filtering a scan of every version by creation time would not.
            query = query.where(s.artifact_versions.c.artifact_id == artifact_id(name))
            newest_first = s.artifact_versions.c.version.desc()
        if run_id is not None:
            produced_in_run = (
                select(s.step_run_outputs.c.artifact_version_id)
                .join(s.step_runs, s.step_runs.c.id == s.step_run_outputs.c.step_run_id)
                .where(s.step_runs.c.run_id == run_id)
            )
            query = query.where(s.artifact_versions.c.id.in_(produced_in_run))
        query = query.order_by(newest_first).limit(limit).offset(offset)
        with self.engine.connect() as conn:
            return [_artifact_version(r) for r in conn.execute(query)]

    def get_metadata(
        self, entity_type: str, entity_ids: Sequence[str]
    ) -> dict[str, list[MetadataRecord]]:
        result: dict[str, list[MetadataRecord]] = {i: [] for i in entity_ids}
        if not entity_ids:
            return result
        m = s.metadata_entries
        with self.engine.connect() as conn:
            for chunk in _chunks(list(entity_ids)):
                rows = conn.execute(
                    select(m)
                    .where(m.c.entity_type == entity_type, m.c.entity_id.in_(chunk))
                    .order_by(m.c.id)
                )
                for r in rows:
                    result[r.entity_id].append(
                        MetadataRecord(
                            r.entity_type,
                            r.entity_id,
                            r.key,
                            json.loads(r.value),
                            r.value_type,
                            r.created_at,
                        )
                    )
        return result

    def get_logs_uri(self, step_run_id: str) -> str | None:
        with self.engine.connect() as conn:
            uri = conn.execute(
                select(s.logs.c.uri)
                .where(s.logs.c.step_run_id == step_run_id)
                .order_by(s.logs.c.id.desc())
                .limit(1)
            ).scalar()
        return uri

    def lineage(self, artifact_version_id: str, *, direction: str = "upstream") -> LineageGraph:
        av = s.artifact_versions
        if direction == "upstream":
            # Follow each version to the step run that produced it, then to that run's inputs.
            reached = select(literal(artifact_version_id).label("id")).cte(
                "reached", recursive=True
            )
            step = (
                select(s.step_run_inputs.c.artifact_version_id)
                .join(av, av.c.producer_step_run_id == s.step_run_inputs.c.step_run_id)
                .join(reached, reached.c.id == av.c.id)
            )
            edges_query = select(
                s.step_run_inputs.c.artifact_version_id, av.c.producer_step_run_id, av.c.id
            ).join(av, av.c.producer_step_run_id == s.step_run_inputs.c.step_run_id)
        elif direction == "downstream":
            # Follow each version to every step run that read it, then to that run's outputs.
            reached = select(literal(artifact_version_id).label("id")).cte(
                "reached", recursive=True
            )
            step = (
                select(s.step_run_outputs.c.artifact_version_id)
                .join(
                    s.step_run_inputs,
                    s.step_run_inputs.c.step_run_id == s.step_run_outputs.c.step_run_id,
                )
                .join(reached, reached.c.id == s.step_run_inputs.c.artifact_version_id)
            )
            edges_query = select(
                s.step_run_inputs.c.artifact_version_id,
                s.step_run_inputs.c.step_run_id,
                s.step_run_outputs.c.artifact_version_id,
            ).join(
                s.step_run_outputs,
                s.step_run_outputs.c.step_run_id == s.step_run_inputs.c.step_run_id,
            )
        else:
            raise ValueError(f"direction must be 'upstream' or 'downstream', not {direction!r}")
        reached = reached.union(step)
        with self.engine.connect() as conn:
            ids = [r[0] for r in conn.execute(select(reached.c.id))]
            if (
                artifact_version_id not in ids
                or conn.execute(select(av.c.id).where(av.c.id == artifact_version_id)).first()
                is None
            ):
                raise NotFoundError(f"no artifact version with id '{artifact_version_id}'")
            versions: dict[str, ArtifactVersionRecord] = {}
            edges: list[tuple[str, str, str]] = []
            for chunk in _chunks(ids):
                versions.update(
                    (r.id, _artifact_version(r))
                    for r in conn.execute(_artifact_version_query().where(av.c.id.in_(chunk)))
                )
                column = edges_query.selected_columns[2 if direction == "upstream" else 0]
                edges.extend(tuple(r) for r in conn.execute(edges_query.where(column.in_(chunk))))
            edges = sorted({e for e in edges if e[0] in versions and e[2] in versions})
            step_ids = sorted({e[1] for e in edges})
            step_runs: dict[str, StepRunRecord] = {}
            for chunk in _chunks(step_ids):
                step_runs.update(
                    (r.id, _step_run(r))
                    for r in conn.execute(select(s.step_runs).where(s.step_runs.c.id.in_(chunk)))
                )
        return LineageGraph(artifact_version_id, versions, step_runs, edges)

    def list_pipelines(self) -> list[PipelineRecord]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(s.pipelines).order_by(s.pipelines.c.name)).all()
            return [self._pipeline(conn, r) for r in rows]

    def get_pipeline(self, name: str) -> PipelineRecord:
        with self.engine.connect() as conn:
            row = conn.execute(select(s.pipelines).where(s.pipelines.c.name == name)).first()
            if row is None:
                names = conn.execute(select(s.pipelines.c.name)).scalars().all()
                raise NotFoundError(f"no pipeline named '{name}'{did_you_mean(name, names)}")
            return self._pipeline(conn, row)

    def _pipeline(self, conn: Connection, row: Row[Any]) -> PipelineRecord:
        pv = s.pipeline_versions
        versions = conn.execute(select(func.count()).where(pv.c.pipeline_id == row.id)).scalar_one()
        runs = conn.execute(select(func.count()).where(s.runs.c.pipeline_id == row.id)).scalar_one()
        latest = conn.execute(
            select(pv.c.spec_hash)
            .where(pv.c.pipeline_id == row.id)
            .order_by(pv.c.created_at.desc())
            .limit(1)
        ).scalar()
        return PipelineRecord(row.id, row.name, row.created_at, versions, runs, latest)

    def get_pipeline_spec(self, pipeline_version_id: str) -> str:
        with self.engine.connect() as conn:
            spec = conn.execute(
                select(s.pipeline_versions.c.spec).where(
                    s.pipeline_versions.c.id == pipeline_version_id
                )
            ).scalar()
        if spec is None:
            raise NotFoundError(f"no pipeline version with id '{pipeline_version_id}'")
        return str(spec)

    # -- stacks, components, secrets --------------------------------------------------------

    def save_component(
        self, type: str, name: str, flavor: str, config: Mapping[str, Any]
    ) -> ComponentRecord:
        component_id = hash_text(f"component:{type}:{name}")[:32]
        now = time.time()
        t = s.components
        c = t.c

        def work(conn: Connection) -> None:
            existing = conn.execute(select(c.id).where(c.id == component_id)).first()
            values = {"flavor": flavor, "config": _dumps(dict(config)), "updated_at": now}
            if existing is None:
                conn.execute(
                    insert(t),
                    {"id": component_id, "type": type, "name": name, "created_at": now, **values},
                )
            else:
                conn.execute(update(t).where(c.id == component_id).values(**values))

        self._retrying(work)
        return self.get_component(type, name)

    def get_component(self, type: str, name: str) -> ComponentRecord:
        t = s.components
        c = t.c
        with self.engine.connect() as conn:
            row = conn.execute(select(t).where(c.type == type, c.name == name)).first()
            if row is None:
                names = conn.execute(select(c.name).where(c.type == type)).scalars().all()
                kind = type.replace("_", " ")
                raise NotFoundError(
                    f"no {kind} named '{name}'{did_you_mean(name, names)}; register one with "
                    f"`gristmill component register {type} {name} --flavor ...`"
                )
        return _component(row)

    def list_components(self, type: str | None = None) -> list[ComponentRecord]:
        t = s.components
        c = t.c
        query = select(t).order_by(c.type, c.name)
        if type is not None:
            query = query.where(c.type == type)
        with self.engine.connect() as conn:
            return [_component(r) for r in conn.execute(query)]

    def delete_component(self, type: str, name: str) -> None:
        record = self.get_component(type, name)

        def work(conn: Connection) -> None:
            users = (
                conn.execute(
                    select(s.stacks.c.name)
                    .join(s.stack_components, s.stack_components.c.stack_id == s.stacks.c.id)
                    .where(s.stack_components.c.component_id == record.id)
                )
                .scalars()
                .all()
            )
            if users:
                raise StoreError(
                    f"{type.replace('_', ' ')} '{name}' is used by stack(s) {', '.join(sorted(users))}: "
                    "remove it from them (or delete them) first"
                )
            conn.execute(s.components.delete().where(s.components.c.id == record.id))

        self._retrying(work)

    def save_stack(self, name: str, components: Mapping[str, str]) -> StackRecord:
        resolved = {
            kind: self.get_component(kind, component) for kind, component in components.items()
        }
        stack_id = hash_text(f"stack:{name}")[:32]
        now = time.time()

        def work(conn: Connection) -> None:
            exists = conn.execute(select(s.stacks.c.id).where(s.stacks.c.id == stack_id)).first()
            if exists is None:
                conn.execute(
                    insert(s.stacks),
                    {"id": stack_id, "name": name, "created_at": now, "updated_at": now},
                )
            else:
                conn.execute(
                    update(s.stacks).where(s.stacks.c.id == stack_id).values(updated_at=now)
                )
                conn.execute(
                    s.stack_components.delete().where(s.stack_components.c.stack_id == stack_id)
                )
            conn.execute(
                insert(s.stack_components),
                [
                    {"stack_id": stack_id, "type": kind, "component_id": c.id}
                    for kind, c in resolved.items()
                ],
            )

        self._retrying(work)
        return self.get_stack(name)

    def get_stack(self, name: str) -> StackRecord:
        with self.engine.connect() as conn:
            row = conn.execute(select(s.stacks).where(s.stacks.c.name == name)).first()
            if row is None:
                names = conn.execute(select(s.stacks.c.name)).scalars().all()
                raise NotFoundError(
                    f"no stack named '{name}'{did_you_mean(name, names)}; `gristmill stack list` shows them"
                )
            return self._stack(conn, row)

    def list_stacks(self) -> list[StackRecord]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(s.stacks).order_by(s.stacks.c.name)).all()
            return [self._stack(conn, r) for r in rows]

    def _stack(self, conn: Connection, row: Any) -> StackRecord:
        members = conn.execute(
            select(s.components, s.stack_components.c.type.label("role"))
            .join(s.stack_components, s.stack_components.c.component_id == s.components.c.id)
            .where(s.stack_components.c.stack_id == row.id)
        ).all()
        components = {m.role: _component(m) for m in members}
        return StackRecord(
            row.id, row.name, dict(sorted(components.items())), row.created_at, row.updated_at
        )

    def delete_stack(self, name: str) -> None:
        record = self.get_stack(name)

        def work(conn: Connection) -> None:
            conn.execute(
                s.stack_components.delete().where(s.stack_components.c.stack_id == record.id)
            )
            conn.execute(s.stacks.delete().where(s.stacks.c.id == record.id))

        self._retrying(work)

    def save_secret(self, name: str, keys: Sequence[str], ciphertext: str) -> None:
        secret_id = hash_text(f"secret:{name}")[:32]
        now = time.time()
        values = {"keys": _dumps(sorted(keys)), "ciphertext": ciphertext, "updated_at": now}

        def work(conn: Connection) -> None:
            exists = conn.execute(select(s.secrets.c.id).where(s.secrets.c.id == secret_id)).first()
            if exists is None:
                conn.execute(
                    insert(s.secrets), {"id": secret_id, "name": name, "created_at": now, **values}
                )
            else:
                conn.execute(update(s.secrets).where(s.secrets.c.id == secret_id).values(**values))

        self._retrying(work)

    def get_secret(self, name: str) -> SecretRecord:
        with self.engine.connect() as conn:
            row = conn.execute(select(s.secrets).where(s.secrets.c.name == name)).first()
            if row is None:
                names = conn.execute(select(s.secrets.c.name)).scalars().all()
                raise NotFoundError(
                    f"no secret named '{name}'{did_you_mean(name, names)}; create it with "
                    f"`gristmill secret create {name} KEY=VALUE ...`"
                )
        return _secret(row)

    def list_secrets(self) -> list[SecretRecord]:
        with self.engine.connect() as conn:
            return [_secret(r) for r in conn.execute(select(s.secrets).order_by(s.secrets.c.name))]

    def delete_secret(self, name: str) -> None:
        self.get_secret(name)

        def work(conn: Connection) -> None:
            conn.execute(s.secrets.delete().where(s.secrets.c.name == name))

        self._retrying(work)


# -- engine ---------------------------------------------------------------------------------


def _create_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1] if "///" in url else ""
        if path and path != ":memory:" and not path.startswith("file:"):
            try:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(
                    f"cannot open the metadata store at {url}: cannot create its folder ({exc}); "
                    "check the path in GRISTMILL_STORE_URL or --store"
                ) from exc
        engine = create_engine(
            url,
            connect_args={"timeout": 60, "isolation_level": None, "check_same_thread": False},
            pool_size=8,
            max_overflow=64,
            # Connection.close() already rolls back what is open; a second rollback on every
            # return to the pool is a wasted round trip per transaction.
            pool_reset_on_return=None,
        )
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
        return engine
    try:
        return create_engine(url, pool_pre_ping=True, pool_size=8, max_overflow=32)
    except Exception as exc:
        raise StoreError(
            f"cannot use the metadata store URL {safe_url(url)}: {exc}. Use a SQLAlchemy URL such "
            "as sqlite:///path/metadata.db or postgresql+psycopg://user@host/db"
        ) from exc


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=60000")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    # Checkpoints (each an fsync) every 4,000 pages rather than SQLite's 1,000: fewer stalls on
    # the write path, while the WAL stays small enough (16 MB) not to slow readers down.
    cursor.execute("PRAGMA wal_autocheckpoint=4000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_on_begin(conn: Connection) -> None:
    # pysqlite's own transaction handling is off (isolation_level=None), so we say BEGIN
    # ourselves: IMMEDIATE for writes, so the write lock is taken (or waited for) up front.
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(_WRITE) else "BEGIN")


def _lock_for_migration(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(724101)"))


def _read_revision(conn: Connection) -> str | None:
    if not inspect(conn).has_table("alembic_version"):
        return None
    value = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    return str(value) if value is not None else None


def _is_transient(exc: DBAPIError) -> bool:
    message = str(exc.orig).lower()
    return isinstance(exc, IntegrityError) or any(
        word in message for word in ("locked", "busy", "deadlock", "serializ", "could not obtain")
    )


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


def safe_url(url: str) -> str:
    """The URL without its password."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}" if ":" in creds else url
    return url


class _Prepared:
    """A statement SQLAlchemy compiles once per dialect (and per set of inserted columns),
    executed on the DBAPI cursor of an SQLAlchemy connection inside its transaction. The hot
    path runs a handful of these per step, and SQLAlchemy's per-statement machinery costs
    several times what SQLite itself does; everything else uses SQLAlchemy as usual."""

    def __init__(self, build: Callable[[], Any]) -> None:
        self._build = build  # built on first use: a run uses only some of these
        self._statement: Any = None
        self._compiled: dict[tuple[str, tuple[str, ...]], Any] = {}

    def compiled(self, dialect: Any, keys: tuple[str, ...]) -> Any:
        found = self._compiled.get((dialect.name, keys))
        if found is None:
            if self._statement is None:
                self._statement = self._build()
            is_insert = getattr(self._statement, "is_insert", False)
            found = self._statement.compile(
                dialect=dialect, column_keys=list(keys) if is_insert else None
            )
            self._compiled[(dialect.name, keys)] = found
        return found


class _Result:
    def __init__(self, cursor: Any) -> None:
        self.cursor = cursor

    def all(self) -> list[_Row]:
        if self.cursor.description is None:
            return []
        names = [d[0] for d in self.cursor.description]
        return [_Row(zip(names, values, strict=True)) for values in self.cursor.fetchall()]

    def first(self) -> _Row | None:
        rows = self.all()
        return rows[0] if rows else None

    def scalar_one(self) -> Any:
        return self.cursor.fetchone()[0]


class _Row(dict[str, Any]):
    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def _execute(conn: Connection, prepared: _Prepared, values: Any) -> _Result:
    """Execute a prepared statement with one parameter dict, or many (executemany)."""
    many = isinstance(values, list)
    rows = values if many else [values]
    compiled = prepared.compiled(conn.dialect, tuple(rows[0]) if rows else ())
    names = compiled.positiontup if compiled.positional else None

    def bind(row: dict[str, Any]) -> Any:
        params = compiled.construct_params(row)
        return tuple(params[n] for n in names) if names is not None else params

    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        if many:
            cursor.executemany(compiled.string, [bind(r) for r in rows])
        else:
            cursor.execute(compiled.string, bind(values))
    except conn.dialect.loaded_dbapi.Error as exc:
        raise DBAPIError.instance(
            compiled.string, values, exc, conn.dialect.loaded_dbapi.Error
        ) from exc
    return _Result(cursor)


def _cache_hit(conn: Connection, row: Any) -> CacheHit:
    outputs = {
        r.io_name: _artifact_version(r)
        for r in _execute(conn, _Q.outputs_of_step_run, {"step_run_id": row.id}).all()
    }
    logged = {
        r.key: json.loads(r.value)
        for r in _execute(
            conn, _Q.metadata_of, {"entity_type": Entity.STEP_RUN, "entity_id": row.id}
        ).all()
    }
    return CacheHit(_step_run(row), outputs, logged)


def _component(row: Any) -> ComponentRecord:
    return ComponentRecord(
        row.id,
        row.type,
        row.name,
        row.flavor,
        _loads(row.config, {}),
        row.created_at,
        row.updated_at,
    )


def _secret(row: Any) -> SecretRecord:
    return SecretRecord(
        row.name, _loads(row.keys, []), row.ciphertext, row.created_at, row.updated_at
    )


def _start_values(step_run_id: str, start: StepStart) -> dict[str, Any]:
    return {
        "row": {
            "step_run_id": step_run_id,
            "started_at": start.started_at,
            "code_hash": start.code_hash,
            "cache_key": start.cache_key,
            "parameters": _dumps(start.parameters),
        },
        "inputs": [
            {"step_run_id": step_run_id, "name": k, "artifact_version_id": v}
            for k, v in start.inputs.items()
        ],
    }


def _chunks(items: list[str], size: int = 500) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _metadata_rows(values: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for key, value in values.items():
        encoded, kind = metadata_value(key, value)
        rows.append({"key": key, "value": encoded, "value_type": kind})
    return rows


def _filter_runs(query: Any, pipeline: str | None, status: str | None) -> Any:
    if pipeline is not None:
        query = query.where(s.runs.c.pipeline_id == hash_text("pipeline:" + pipeline)[:32])
    if status is not None:
        query = query.where(s.runs.c.status == status)
    return query


def _run_query() -> Any:
    return (
        select(s.runs, s.pipelines.c.name.label("pipeline_name"), s.pipeline_versions.c.spec_hash)
        .join(s.pipelines, s.pipelines.c.id == s.runs.c.pipeline_id)
        .join(s.pipeline_versions, s.pipeline_versions.c.id == s.runs.c.pipeline_version_id)
    )


def _run(row: Row[Any]) -> RunRecord:
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
        stack=_loads(row.stack, {}),
        config=_loads(row.config, {}),
        environment=_loads(row.environment, {}),
        tags=_loads(row.tags, []),
        error=row.error,
        spec_hash=row.spec_hash,
    )


def _step_run(row: Any) -> StepRunRecord:
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
        parameters=_loads(row.parameters, {}),
        started_at=row.started_at,
        ended_at=row.ended_at,
        attempts=row.attempts,
        cached_from=row.cached_from,
        error=row.error,
    )


def _artifact_version_query() -> Any:
    av = s.artifact_versions
    return (
        select(av, s.artifacts.c.name.label("artifact_name"), s.step_runs.c.run_id)
        .join(s.artifacts, s.artifacts.c.id == av.c.artifact_id)
        .outerjoin(s.step_runs, s.step_runs.c.id == av.c.producer_step_run_id)
    )


def _artifact_version(row: Any) -> ArtifactVersionRecord:
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


def _io_rows(
    conn: Connection, table: Table, step_run_ids: Sequence[str]
) -> dict[str, dict[str, ArtifactVersionRecord]]:
    result: dict[str, dict[str, ArtifactVersionRecord]] = {}
    query = (
        _artifact_version_query()
        .add_columns(table.c.step_run_id.label("io_step_run_id"), table.c.name.label("io_name"))
        .join(table, table.c.artifact_version_id == s.artifact_versions.c.id)
    )
    for chunk in _chunks(list(step_run_ids)):
        for r in conn.execute(query.where(table.c.step_run_id.in_(chunk))):
            result.setdefault(r.io_step_run_id, {})[r.io_name] = _artifact_version(r)
    return result


class _Q:
    """The statements run for every step, built once: building and caching a new statement
    object per call costs more than executing it."""

    mark_running = _Prepared(
        lambda: (
            update(s.step_runs)
            .where(
                s.step_runs.c.id == bindparam("step_run_id"), s.step_runs.c.status == Status.PENDING
            )
            .values(status=Status.RUNNING, started_at=bindparam("started_at"))
        )
    )
    finish_step_run = _Prepared(
        lambda: (
            update(s.step_runs)
            .where(s.step_runs.c.id == bindparam("step_run_id"))
            .values(
                status=bindparam("status"),
                started_at=bindparam("started_at"),
                ended_at=bindparam("ended_at"),
                code_hash=bindparam("code_hash"),
                cache_key=bindparam("cache_key"),
                parameters=bindparam("parameters"),
                attempts=bindparam("attempts"),
                cached_from=bindparam("cached_from"),
                error=bindparam("error"),
            )
        )
    )
    insert_inputs = _Prepared(lambda: insert(s.step_run_inputs))
    insert_outputs = _Prepared(lambda: insert(s.step_run_outputs))
    insert_metadata = _Prepared(lambda: insert(s.metadata_entries))
    insert_artifact_version = _Prepared(lambda: insert(s.artifact_versions))
    insert_log = _Prepared(
        lambda: insert(s.logs).values(
            run_id=select(s.step_runs.c.run_id)
            .where(s.step_runs.c.id == bindparam("step_run_id"))
            .scalar_subquery(),
            step_run_id=bindparam("step_run_id"),
            uri=bindparam("uri"),
            created_at=bindparam("created_at"),
        )
    )
    find_cached = _Prepared(
        lambda: (
            select(s.step_runs)
            .where(
                s.step_runs.c.cache_key == bindparam("cache_key"),
                s.step_runs.c.status == Status.COMPLETED,
            )
            .order_by(s.step_runs.c.ended_at.desc())
            .limit(1)
        )
    )
    metadata_of = _Prepared(
        lambda: (
            select(s.metadata_entries.c.key, s.metadata_entries.c.value)
            .where(
                s.metadata_entries.c.entity_type == bindparam("entity_type"),
                s.metadata_entries.c.entity_id == bindparam("entity_id"),
            )
            .order_by(s.metadata_entries.c.id)
        )
    )
    next_version = _Prepared(
        lambda: select(func.coalesce(func.max(s.artifact_versions.c.version), 0) + 1).where(
            s.artifact_versions.c.artifact_id == bindparam("artifact_id")
        )
    )
    artifact_version_by_id = _Prepared(
        lambda: _artifact_version_query().where(s.artifact_versions.c.id == bindparam("id"))
    )
    outputs_of_step_run = _Prepared(
        lambda: (
            _artifact_version_query()
            .add_columns(s.step_run_outputs.c.name.label("io_name"))
            .join(
                s.step_run_outputs,
                s.step_run_outputs.c.artifact_version_id == s.artifact_versions.c.id,
            )
            .where(s.step_run_outputs.c.step_run_id == bindparam("step_run_id"))
        )
    )
