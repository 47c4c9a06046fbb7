"""Reading runs, step runs, their inputs and outputs, artifact versions, metadata, logs and
pipelines from the SQL store (``RunReader``). Reads only: never writes a row."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from gristmill.errors import NotFoundError, did_you_mean
from gristmill.store.base import RunReader
from gristmill.store.ids import artifact_id, pipeline_id
from gristmill.store.records import (
    ArtifactVersionRecord,
    MetadataRecord,
    PipelineRecord,
    RunRecord,
    StepRunRecord,
)
from gristmill.store.sql._lazy import sa
from gristmill.store.sql._lazy import schema as s
from gristmill.store.sql.engine import SQLEngine
from gristmill.store.sql.prepared import Prepared, execute
from gristmill.store.sql.rows import (
    artifact_version_query,
    artifact_version_record,
    chunks,
    run_query,
    run_record,
    step_run_record,
)


class SQLRunReader(SQLEngine, RunReader):
    def get_run(self, ref: str) -> RunRecord:
        with self._reading(f"reading run '{ref}'", prepared=True) as conn:
            found = execute(conn, _RUN_BY_ID, {"id": ref}).first()
        if found is not None:  # the usual case (a run reading itself), prepared
            return run_record(found)
        query = run_query()
        with self._reading(f"reading run '{ref}'") as conn:
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
                    sa.select(s.runs.c.name).order_by(s.runs.c.created_at.desc()).limit(200)
                ).scalars()
                raise NotFoundError(
                    f"no run with id or name '{ref}'{did_you_mean(ref, names)}; "
                    "`gristmill runs list` shows the runs"
                )
        return run_record(row)

    def list_runs(
        self,
        *,
        pipeline: str | None = None,
        status: str | None = None,
        limit: int = 50,
        offset: int = 0,
        experiment: str | None = None,
    ) -> list[RunRecord]:
        # The page of ids first, from the runs' own (created_at) index; then their rows with the
        # pipeline's name: joining first lets the planner sort every run of the pipeline.
        newest = s.runs.c.created_at.desc()
        page = (
            _filter_runs(sa.select(s.runs.c.id), pipeline, status, experiment)
            .order_by(newest)
            .limit(limit)
            .offset(offset)
        )
        query = run_query().where(s.runs.c.id.in_(page.scalar_subquery())).order_by(newest)
        with self._reading("listing runs") as conn:
            return [run_record(r) for r in conn.execute(query)]

    def count_runs(
        self,
        *,
        pipeline: str | None = None,
        status: str | None = None,
        experiment: str | None = None,
    ) -> int:
        query = _filter_runs(
            sa.select(sa.func.count()).select_from(s.runs), pipeline, status, experiment
        )
        with self._reading("counting runs") as conn:
            return int(conn.execute(query).scalar_one())

    def get_step_runs(self, run_id: str) -> list[StepRunRecord]:
        query = (
            sa.select(s.step_runs)
            .where(s.step_runs.c.run_id == run_id)
            .order_by(s.step_runs.c.position)
        )
        with self._reading(f"reading the step runs of run '{run_id}'") as conn:
            return [step_run_record(r) for r in conn.execute(query)]

    def get_step_run(self, step_run_id: str) -> StepRunRecord:
        with self._reading(f"reading step run '{step_run_id}'") as conn:
            row = conn.execute(
                sa.select(s.step_runs).where(s.step_runs.c.id == step_run_id)
            ).first()
        if row is None:
            raise NotFoundError(f"no step run with id '{step_run_id}'")
        return step_run_record(row)

    def get_step_run_io(
        self, step_run_ids: Sequence[str]
    ) -> dict[str, tuple[dict[str, ArtifactVersionRecord], dict[str, ArtifactVersionRecord]]]:
        with self._reading("reading step runs' inputs and outputs") as conn:
            inputs = _io_rows(conn, s.step_run_inputs, step_run_ids)
            outputs = _io_rows(conn, s.step_run_outputs, step_run_ids)
        return {i: (inputs.get(i, {}), outputs.get(i, {})) for i in step_run_ids}

    def get_artifact_version(self, ref: str) -> ArtifactVersionRecord:
        query = artifact_version_query()
        with self._reading(f"reading artifact version '{ref}'") as conn:
            row: sa.Row[Any] | None = None
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
                names = conn.execute(sa.select(s.artifacts.c.name)).scalars().all()
                raise NotFoundError(
                    f"no artifact version '{ref}'{did_you_mean(name if sep else ref, names)}; give an "
                    "id, NAME (the latest version) or NAME:VERSION (`gristmill artifacts list`)"
                )
        return artifact_version_record(row)

    def list_artifact_versions(
        self,
        *,
        name: str | None = None,
        run_id: str | None = None,
        content_hash: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[ArtifactVersionRecord]:
        query = artifact_version_query()
        if content_hash is not None:
            query = query.where(s.artifact_versions.c.content_hash == content_hash)
        newest_first = s.artifact_versions.c.created_at.desc()
        if name is not None:
            # By the artifact's id and version, newest first: the (artifact_id, version) index
            # answers it, where filtering a scan of every version by creation time would not.
            query = query.where(s.artifact_versions.c.artifact_id == artifact_id(name))
            newest_first = s.artifact_versions.c.version.desc()
        if run_id is not None:
            produced_in_run = (
                sa.select(s.step_run_outputs.c.artifact_version_id)
                .join(s.step_runs, s.step_runs.c.id == s.step_run_outputs.c.step_run_id)
                .where(s.step_runs.c.run_id == run_id)
            )
            query = query.where(s.artifact_versions.c.id.in_(produced_in_run))
        query = query.order_by(newest_first).limit(limit).offset(offset)
        with self._reading("listing artifact versions") as conn:
            return [artifact_version_record(r) for r in conn.execute(query)]

    def list_artifact_names(self) -> list[str]:
        with self._reading("listing artifact names") as conn:
            return list(
                conn.execute(sa.select(s.artifacts.c.name).order_by(s.artifacts.c.name)).scalars()
            )

    def get_metadata(
        self, entity_type: str, entity_ids: Sequence[str]
    ) -> dict[str, list[MetadataRecord]]:
        result: dict[str, list[MetadataRecord]] = {i: [] for i in entity_ids}
        if not entity_ids:
            return result
        m = s.metadata_entries
        with self._reading(f"reading {entity_type} metadata") as conn:
            for chunk in chunks(list(entity_ids)):
                rows = conn.execute(
                    sa.select(m)
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
        with self._reading(f"reading where step run '{step_run_id}' logged") as conn:
            uri = conn.execute(
                sa.select(s.logs.c.uri)
                .where(s.logs.c.step_run_id == step_run_id)
                .order_by(s.logs.c.id.desc())
                .limit(1)
            ).scalar()
        return None if uri is None else str(uri)

    def list_pipelines(self) -> list[PipelineRecord]:
        with self._reading("listing pipelines") as conn:
            rows = conn.execute(sa.select(s.pipelines).order_by(s.pipelines.c.name)).all()
            return [_pipeline(conn, r) for r in rows]

    def get_pipeline(self, name: str) -> PipelineRecord:
        with self._reading(f"reading pipeline '{name}'") as conn:
            row = conn.execute(sa.select(s.pipelines).where(s.pipelines.c.name == name)).first()
            if row is None:
                names = conn.execute(sa.select(s.pipelines.c.name)).scalars().all()
                raise NotFoundError(f"no pipeline named '{name}'{did_you_mean(name, names)}")
            return _pipeline(conn, row)

    def get_pipeline_spec(self, pipeline_version_id: str) -> str:
        with self._reading(f"reading pipeline version '{pipeline_version_id}'") as conn:
            spec = conn.execute(
                sa.select(s.pipeline_versions.c.spec).where(
                    s.pipeline_versions.c.id == pipeline_version_id
                )
            ).scalar()
        if spec is None:
            raise NotFoundError(f"no pipeline version with id '{pipeline_version_id}'")
        return str(spec)


def _pipeline(conn: sa.Connection, row: sa.Row[Any]) -> PipelineRecord:
    pv = s.pipeline_versions
    versions = conn.execute(
        sa.select(sa.func.count()).where(pv.c.pipeline_id == row.id)
    ).scalar_one()
    runs = conn.execute(
        sa.select(sa.func.count()).where(s.runs.c.pipeline_id == row.id)
    ).scalar_one()
    latest = conn.execute(
        sa.select(pv.c.spec_hash)
        .where(pv.c.pipeline_id == row.id)
        .order_by(pv.c.created_at.desc())
        .limit(1)
    ).scalar()
    return PipelineRecord(row.id, row.name, row.created_at, versions, runs, latest)


def _filter_runs(
    query: Any, pipeline: str | None, status: str | None, experiment: str | None = None
) -> Any:
    if pipeline is not None:
        query = query.where(s.runs.c.pipeline_id == pipeline_id(pipeline))
    if experiment is not None:
        query = query.where(s.runs.c.experiment == experiment)
    if status is not None:
        query = query.where(s.runs.c.status == status)
    return query


def _io_rows(
    conn: sa.Connection, table: sa.Table, step_run_ids: Sequence[str]
) -> dict[str, dict[str, ArtifactVersionRecord]]:
    result: dict[str, dict[str, ArtifactVersionRecord]] = {}
    query = (
        artifact_version_query()
        .add_columns(table.c.step_run_id.label("io_step_run_id"), table.c.name.label("io_name"))
        .join(table, table.c.artifact_version_id == s.artifact_versions.c.id)
    )
    for chunk in chunks(list(step_run_ids)):
        for r in conn.execute(query.where(table.c.step_run_id.in_(chunk))):
            result.setdefault(r.io_step_run_id, {})[r.io_name] = artifact_version_record(r)
    return result


_RUN_BY_ID = Prepared("runs.by_id", lambda: run_query().where(s.runs.c.id == sa.bindparam("id")))
