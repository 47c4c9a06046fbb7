"""where each step run ran

Step runs record the worker that ran them (host, pid, and its environment: Python, platform,
packages digest, container image) and their own heartbeat, so a run on a cluster shows where
each step really ran and a run whose steps still beat elsewhere is not taken for dead.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("step_runs") as batch:
        batch.add_column(sa.Column("host", sa.String(255), nullable=True))
        batch.add_column(sa.Column("pid", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("heartbeat_at", sa.Float(), nullable=True))
        batch.add_column(sa.Column("environment", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("step_runs") as batch:
        batch.drop_column("environment")
        batch.drop_column("heartbeat_at")
        batch.drop_column("pid")
        batch.drop_column("host")
