"""Deleting runs on the SQL store (``RunDeleter``): the runs, their step runs, edges, metadata
and log rows, and the artifact versions only they hold, in one write transaction. Never
touches artifact bytes: they are content-addressed and may be shared."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from gristmill.errors import NotFoundError, StoreError
from gristmill.store.base import RunDeleter
from gristmill.store.records import Entity, RunDeletion, Status
from gristmill.store.sql._lazy import sa
from gristmill.store.sql._lazy import schema as s
from gristmill.store.sql.engine import SQLEngine
from gristmill.store.sql.rows import (
    artifact_version_query,
    artifact_version_record,
    chunks,
    run_query,
    run_record,
)

# How many consuming runs a refusal names before it says "and N more".
_NAMED = 10


class _Rollback(Exception):
    """Raised inside the transaction of a dry run, so nothing it did is kept."""

    def __init__(self, result: RunDeletion) -> None:
        self.result = result


class SQLRunDeleter(SQLEngine, RunDeleter):
    def delete_runs(
        self, run_ids: Sequence[str], *, force: bool = False, dry_run: bool = False
    ) -> RunDeletion:
        wanted = list(dict.fromkeys(run_ids))

        def work(conn: sa.Connection) -> RunDeletion:
            result = _delete(conn, wanted, force=force)
            if dry_run:
                raise _Rollback(result)
            return result

        try:
            return self._retrying(work, "deleting runs")
        except _Rollback as done:
            return done.result


def _in(column: Any, ids: Iterable[str]) -> Any:
    """``column IN ids``, split in slices every database accepts."""
    listed = list(ids)
    if not listed:
        return column.in_([])
    return sa.or_(*(column.in_(part) for part in chunks(listed)))


def _delete(conn: sa.Connection, run_ids: list[str], *, force: bool) -> RunDeletion:
    runs = [run_record(r) for r in conn.execute(run_query().where(_in(s.runs.c.id, run_ids)))]
    missing = set(run_ids) - {r.id for r in runs}
    if missing:
        raise NotFoundError(f"no run with id {', '.join(sorted(missing))}")
    live = [r for r in runs if r.status in Status.ACTIVE]
    if live and not force:
        names = ", ".join(f"{r.name} ({r.status})" for r in live)
        raise StoreError(
            f"refusing to delete {names}: still running. Wait for it to finish, mark a run "
            "whose process died with `gristmill runs reap`, or delete it anyway with --force "
            "(force=True)"
        )
    sr = s.step_runs.c
    steps = list(conn.execute(sa.select(sr.id).where(_in(sr.run_id, run_ids))).scalars())
    step_set = set(steps)
    outputs = s.step_run_outputs.c
    inputs = s.step_run_inputs.c
    av = s.artifact_versions.c
    # Every version these step runs produced or list as an output.
    candidates = set(
        conn.execute(
            sa.select(outputs.artifact_version_id).where(_in(outputs.step_run_id, steps))
        ).scalars()
    ) | set(conn.execute(sa.select(av.id).where(_in(av.producer_step_run_id, steps))).scalars())
    # Other step runs listing one as an output (a cache hit, the same bytes): those stay.
    elsewhere: dict[str, list[tuple[str, float]]] = {}
    for version, step_run, created in conn.execute(
        sa.select(outputs.artifact_version_id, outputs.step_run_id, sr.created_at)
        .join(s.step_runs, sr.id == outputs.step_run_id)
        .where(_in(outputs.artifact_version_id, candidates))
    ):
        if step_run not in step_set:
            elsewhere.setdefault(version, []).append((created, step_run))
    doomed = candidates - set(elsewhere)
    _refuse_consumed(conn, doomed, step_set)
    _refuse_model_linked(conn, doomed)

    records = {
        r.id: artifact_version_record(r)
        for r in conn.execute(artifact_version_query().where(_in(av.id, candidates)))
    }
    result = RunDeletion(
        runs=runs,
        step_runs=len(steps),
        artifact_versions=sorted(
            (records[i] for i in doomed if i in records),
            key=lambda r: (r.artifact_name, r.version),
        ),
        kept_artifact_versions=sorted(
            (records[i] for i in elsewhere if i in records),
            key=lambda r: (r.artifact_name, r.version),
        ),
    )

    # Kept versions whose producer goes: the earliest other step run listing them produces them.
    for version, others in elsewhere.items():
        record = records.get(version)
        if record is not None and record.producer_step_run_id in step_set:
            conn.execute(
                sa.update(s.artifact_versions)
                .where(av.id == version)
                .values(producer_step_run_id=min(others)[1])
            )
    conn.execute(
        sa.update(s.step_runs)
        .where(sa.and_(_in(sr.cached_from, steps), ~_in(sr.run_id, run_ids)))
        .values(cached_from=None)
    )
    meta = s.metadata_entries.c
    for entity_type, ids in (
        (Entity.RUN, run_ids),
        (Entity.STEP_RUN, steps),
        (Entity.ARTIFACT_VERSION, doomed),
    ):
        for part in chunks(sorted(ids)):
            conn.execute(
                sa.delete(s.metadata_entries).where(
                    meta.entity_type == entity_type, meta.entity_id.in_(part)
                )
            )
    logs = s.logs.c
    for part in chunks(run_ids):
        conn.execute(sa.delete(s.metric_points).where(s.metric_points.c.run_id.in_(part)))
        conn.execute(sa.delete(s.logs).where(logs.run_id.in_(part)))
    for part in chunks(steps):
        conn.execute(sa.delete(s.logs).where(logs.step_run_id.in_(part)))
        conn.execute(sa.delete(s.step_run_inputs).where(inputs.step_run_id.in_(part)))
        conn.execute(sa.delete(s.step_run_outputs).where(outputs.step_run_id.in_(part)))
    for part in chunks(sorted(doomed)):
        conn.execute(sa.delete(s.artifact_versions).where(av.id.in_(part)))
    for part in chunks(steps):
        conn.execute(sa.delete(s.step_runs).where(sr.id.in_(part)))
    for part in chunks(run_ids):
        conn.execute(sa.delete(s.runs).where(s.runs.c.id.in_(part)))
    return result


def _refuse_model_linked(conn: sa.Connection, doomed: set[str]) -> None:
    """A StoreError naming the model versions that link a doomed artifact version: a model
    version keeps what it was made of until it is deleted itself."""
    from gristmill.store.sql.models import model_linked_versions

    linked = [v for part in chunks(sorted(doomed)) for v in model_linked_versions(conn, part)]
    if linked:
        shown = ", ".join(sorted(set(linked)))
        raise StoreError(
            f"refusing to delete: model version(s) {shown} link artifact versions of these "
            "runs; delete those model versions first (`gristmill models delete MODEL VERSION`)"
        )


def _refuse_consumed(conn: sa.Connection, doomed: set[str], deleted_steps: set[str]) -> None:
    """A StoreError naming the runs (outside those deleted) that took a doomed version as an
    input: deleting it would cut their lineage."""
    if not doomed:
        return
    inputs = s.step_run_inputs.c
    sr = s.step_runs.c
    consumers: dict[str, set[str]] = {}
    query = (
        sa.select(s.runs.c.name, sr.name, inputs.step_run_id, inputs.artifact_version_id)
        .join(s.step_runs, sr.id == inputs.step_run_id)
        .join(s.runs, s.runs.c.id == sr.run_id)
        .where(_in(inputs.artifact_version_id, doomed))
    )
    versions: set[str] = set()
    for run_name, step_name, step_run, version in conn.execute(query):
        if step_run in deleted_steps:
            continue
        consumers.setdefault(run_name, set()).add(step_name)
        versions.add(version)
    if not consumers:
        return
    names = {
        r.id: f"{r.artifact_name}:{r.version}"
        for r in (
            artifact_version_record(row)
            for row in conn.execute(
                artifact_version_query().where(_in(s.artifact_versions.c.id, versions))
            )
        )
    }
    used = ", ".join(sorted(names.get(v, v[:12]) for v in versions))
    listed = sorted(consumers)
    shown = "; ".join(
        f"run {name} (step {', '.join(sorted(consumers[name]))})" for name in listed[:_NAMED]
    )
    if len(listed) > _NAMED:
        shown += f"; and {len(listed) - _NAMED} more"
    raise StoreError(
        f"refusing to delete: other runs used its artifact versions {used} as inputs: {shown}. "
        f"Delete those runs first, or together with it (`gristmill runs delete RUN "
        f"{' '.join(listed[:_NAMED])}`)"
    )
