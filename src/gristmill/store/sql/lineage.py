"""Lineage on the SQL store (``LineageReader``): one recursive query over the step run input
and output edges, up or down from an artifact version. Reads only."""

from __future__ import annotations

from gristmill.errors import ConfigError, NotFoundError
from gristmill.store.base import LineageReader
from gristmill.store.records import ArtifactVersionRecord, LineageGraph, StepRunRecord
from gristmill.store.sql._lazy import sa
from gristmill.store.sql._lazy import schema as s
from gristmill.store.sql.engine import SQLEngine
from gristmill.store.sql.rows import (
    artifact_version_query,
    artifact_version_record,
    chunks,
    step_run_record,
)


class SQLLineageReader(SQLEngine, LineageReader):
    def lineage(self, artifact_version_id: str, *, direction: str = "upstream") -> LineageGraph:
        av = s.artifact_versions
        inputs, outputs = s.step_run_inputs, s.step_run_outputs
        reached = sa.select(sa.literal(artifact_version_id).label("id")).cte(
            "reached", recursive=True
        )
        if direction == "upstream":
            # Follow each version to the step run that produced it, then to that run's inputs.
            step = (
                sa.select(inputs.c.artifact_version_id)
                .join(av, av.c.producer_step_run_id == inputs.c.step_run_id)
                .join(reached, reached.c.id == av.c.id)
            )
            edges_query = sa.select(
                inputs.c.artifact_version_id, av.c.producer_step_run_id, av.c.id
            ).join(av, av.c.producer_step_run_id == inputs.c.step_run_id)
        elif direction == "downstream":
            # Follow each version to every step run that read it, then to that run's outputs.
            step = (
                sa.select(outputs.c.artifact_version_id)
                .join(inputs, inputs.c.step_run_id == outputs.c.step_run_id)
                .join(reached, reached.c.id == inputs.c.artifact_version_id)
            )
            edges_query = sa.select(
                inputs.c.artifact_version_id,
                inputs.c.step_run_id,
                outputs.c.artifact_version_id,
            ).join(outputs, outputs.c.step_run_id == inputs.c.step_run_id)
        else:
            raise ConfigError(
                f"lineage direction must be 'upstream' or 'downstream', not {direction!r}"
            )
        reached = reached.union(step)
        with self._reading(f"walking the lineage of '{artifact_version_id}'") as conn:
            ids = [r[0] for r in conn.execute(sa.select(reached.c.id))]
            if (
                artifact_version_id not in ids
                or conn.execute(sa.select(av.c.id).where(av.c.id == artifact_version_id)).first()
                is None
            ):
                raise NotFoundError(f"no artifact version with id '{artifact_version_id}'")
            versions: dict[str, ArtifactVersionRecord] = {}
            edges: list[tuple[str, str, str]] = []
            column = edges_query.selected_columns[2 if direction == "upstream" else 0]
            for chunk in chunks(ids):
                versions.update(
                    (r.id, artifact_version_record(r))
                    for r in conn.execute(artifact_version_query().where(av.c.id.in_(chunk)))
                )
                edges.extend(
                    (r[0], r[1], r[2]) for r in conn.execute(edges_query.where(column.in_(chunk)))
                )
            edges = sorted({e for e in edges if e[0] in versions and e[2] in versions})
            step_ids = sorted({e[1] for e in edges})
            step_runs: dict[str, StepRunRecord] = {}
            for chunk in chunks(step_ids):
                step_runs.update(
                    (r.id, step_run_record(r))
                    for r in conn.execute(sa.select(s.step_runs).where(s.step_runs.c.id.in_(chunk)))
                )
        return LineageGraph(artifact_version_id, versions, step_runs, edges)
