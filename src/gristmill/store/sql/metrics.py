"""Metric series and experiments in the SQL store (``MetricWriter``, ``MetricReader``), and the
rows a step's points become inside its publish transaction (``metric_rows``, used by the run
write path). A step that logged no metric adds no statement; one that logged 10,000 adds one
batched insert."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from gristmill.errors import NotFoundError
from gristmill.store.base import MetricReader, MetricWriter
from gristmill.store.metadata_values import metadata_value
from gristmill.store.records import Entity, ExperimentRecord, MetricPoint
from gristmill.store.sql._lazy import sa
from gristmill.store.sql._lazy import schema as s
from gristmill.store.sql.engine import SQLEngine
from gristmill.store.sql.prepared import Prepared, StatementConnection, execute, insert_of
from gristmill.store.sql.rows import chunks


class SQLMetricStore(SQLEngine, MetricWriter, MetricReader):
    def add_metric_points(self, points: Sequence[MetricPoint]) -> None:
        if not points:
            return
        run_ids = sorted({p.run_id for p in points})

        def work(conn: sa.Connection) -> None:
            found = set(
                conn.execute(sa.select(s.runs.c.id).where(s.runs.c.id.in_(run_ids))).scalars()
            )
            missing = [r for r in run_ids if r not in found]
            if missing:
                raise NotFoundError(f"no run with id '{missing[0]}'")
            write_points(conn, points)

        self._retrying(work, "recording metric points")

    def metric_history(
        self, run_id: str, name: str, *, step_run_id: str | None = None
    ) -> list[MetricPoint]:
        m = s.metric_points.c
        query = (
            sa.select(m.run_id, m.step_run_id, m.name, m.step, m.value, m.created_at)
            .where(m.run_id == run_id, m.name == name)
            .order_by(m.step, m.id)
        )
        if step_run_id is not None:
            query = query.where(m.step_run_id == step_run_id)
        with self._reading(f"reading the history of metric '{name}'") as conn:
            return [
                MetricPoint(
                    run_id=r.run_id,
                    name=r.name,
                    step=r.step,
                    value=math.nan if r.value is None else r.value,
                    at=r.created_at,
                    step_run_id=r.step_run_id,
                )
                for r in conn.execute(query)
            ]

    def metric_names(self, run_ids: Sequence[str]) -> dict[str, list[str]]:
        result: dict[str, list[str]] = {r: [] for r in run_ids}
        m = s.metric_points.c
        with self._reading("listing metric names") as conn:
            for part in chunks(list(run_ids)):
                # DISTINCT over the (run_id, name, step) index: no table rows are read.
                rows = conn.execute(
                    sa.select(m.run_id, m.name).where(m.run_id.in_(part)).distinct()
                ).all()
                for run_id, name in rows:
                    result[run_id].append(name)
        return {r: sorted(names) for r, names in result.items()}

    def list_experiments(self) -> list[ExperimentRecord]:
        runs = s.runs.c
        query = (
            sa.select(
                runs.experiment,
                sa.func.count().label("run_count"),
                sa.func.min(runs.created_at).label("first_run_at"),
                sa.func.max(runs.created_at).label("last_run_at"),
            )
            .group_by(runs.experiment)
            .order_by(sa.func.max(runs.created_at).desc())
        )
        with self._reading("listing experiments") as conn:
            return [
                ExperimentRecord(r.experiment, r.run_count, r.first_run_at, r.last_run_at)
                for r in conn.execute(query)
                if r.experiment is not None
            ]


def write_points(conn: StatementConnection, points: Sequence[MetricPoint]) -> None:
    """Insert points (one executemany; those without a step numbered first) and each series'
    last value as metadata of its run and step run (the last logged, whatever its step)."""
    _number(conn, points)
    execute(
        conn,
        _Q.insert_points,
        [
            {
                "run_id": p.run_id,
                "step_run_id": p.step_run_id,
                "name": p.name,
                "step": p.step,
                # SQLite turns a NaN into NULL on its own; say so for every database.
                "value": None if math.isnan(p.value) else p.value,
                "created_at": p.at,
            }
            for p in points
        ],
    )
    last: dict[tuple[str, str | None, str], MetricPoint] = {}
    for p in points:
        last[(p.run_id, p.step_run_id, p.name)] = p
    rows: list[dict[str, Any]] = []
    for (run_id, step_run_id, name), point in last.items():
        encoded, kind = metadata_value(name, point.value)
        row = {"key": name, "value": encoded, "value_type": kind, "created_at": point.at}
        if step_run_id is not None:
            rows.append({**row, "entity_type": Entity.STEP_RUN, "entity_id": step_run_id})
        rows.append({**row, "entity_type": Entity.RUN, "entity_id": run_id})
    execute(conn, INSERT_METADATA, rows)


def _number(conn: StatementConnection, points: Sequence[MetricPoint]) -> None:
    """Give each point without a step the next one of its name in its run."""
    wanted = {(p.run_id, p.name) for p in points if p.step is None}
    if not wanted:
        return
    following: dict[tuple[str, str], int] = {}
    for run_id, name in wanted:
        highest = execute(conn, _Q.highest_step, {"run_id": run_id, "name": name}).scalar()
        following[(run_id, name)] = -1 if highest is None else int(highest)
    for p in points:
        key = (p.run_id, p.name)
        if p.step is None:
            p.step = following[key] + 1
        if key in following:
            following[key] = max(following[key], p.step)


INSERT_METADATA = Prepared(
    "metadata_entries.insert",
    lambda: insert_of(
        s.metadata_entries, "key", "value", "value_type", "entity_type", "entity_id", "created_at"
    ),
)


class _Q:
    insert_points = Prepared(
        "metric_points.insert",
        lambda: insert_of(
            s.metric_points, "run_id", "step_run_id", "name", "step", "value", "created_at"
        ),
    )
    highest_step = Prepared(
        "metric_points.highest_step",
        lambda: sa.select(sa.func.max(s.metric_points.c.step)).where(
            s.metric_points.c.run_id == sa.bindparam("run_id"),
            s.metric_points.c.name == sa.bindparam("name"),
        ),
    )
