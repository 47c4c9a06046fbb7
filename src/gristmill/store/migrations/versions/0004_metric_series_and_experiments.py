"""metric series and experiments

Metric points (one row per logged value: run, step run, name, step, value, time), indexed by
(run, name, step) so one series is one index range; and the experiment each run belongs to,
filled for existing runs with their pipeline's name (the default), indexed with the run's
creation time for "the latest runs of an experiment".

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "metric_points",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("step_run_id", sa.String(32), nullable=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_metric_points_run_id_runs")),
        sa.ForeignKeyConstraint(
            ["step_run_id"], ["step_runs.id"], name=op.f("fk_metric_points_step_run_id_step_runs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_metric_points")),
    )
    op.create_index(
        op.f("ix_metric_points_run_id_name_step"), "metric_points", ["run_id", "name", "step"]
    )
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("experiment", sa.String(255), nullable=True))
    op.execute(
        "UPDATE runs SET experiment = (SELECT pipelines.name FROM pipelines "
        "WHERE pipelines.id = runs.pipeline_id)"
    )
    op.create_index(op.f("ix_runs_experiment_created_at"), "runs", ["experiment", "created_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_runs_experiment_created_at"), table_name="runs")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("experiment")
    op.drop_index(op.f("ix_metric_points_run_id_name_step"), table_name="metric_points")
    op.drop_table("metric_points")
