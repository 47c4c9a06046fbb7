"""artifact versions numbered per producing step run

An artifact version used to be the same bytes under one name (its id derived from them); it is
now one output of one producing step run, numbered per artifact name. Each artifact counts the
numbers it has given (``last_version``), so a deleted version's number is never given again,
and versions sharing bytes are found by their content hash. Existing rows keep their ids and
numbers; each artifact's counter starts at its highest number.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("artifacts") as batch:
        batch.add_column(
            sa.Column("last_version", sa.Integer(), nullable=False, server_default="0")
        )
    op.execute(
        "UPDATE artifacts SET last_version = COALESCE((SELECT MAX(artifact_versions.version) "
        "FROM artifact_versions WHERE artifact_versions.artifact_id = artifacts.id), 0)"
    )
    op.create_index(
        op.f("ix_artifact_versions_content_hash"), "artifact_versions", ["content_hash"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_artifact_versions_content_hash"), table_name="artifact_versions")
    with op.batch_alter_table("artifacts") as batch:
        batch.drop_column("last_version")
