"""model registry

Models (name, description, license, tags, model card fields, the highest version number
given), their versions (numbered per model, optionally named, in at most one stage, with the
run that created them), the artifact versions linked to each version (as model, data or
deployment artifacts) and each version's stage history (who moved it, when, from what).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "models",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("license", sa.String(255), nullable=True),
        sa.Column("tags", sa.Text(), nullable=True),
        sa.Column("details", sa.Text(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("last_version", sa.Integer(), nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_models")),
        sa.UniqueConstraint("name", name=op.f("uq_models_name")),
    )
    op.create_table(
        "model_versions",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("model_id", sa.String(32), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(255), nullable=True),
        sa.Column("stage", sa.String(16), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("tags", sa.Text(), nullable=True),
        sa.Column("run_id", sa.String(32), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"], ["models.id"], name=op.f("fk_model_versions_model_id_models")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_versions")),
        sa.UniqueConstraint("model_id", "number", name=op.f("uq_model_versions_model_id_number")),
        sa.UniqueConstraint("model_id", "name", name=op.f("uq_model_versions_model_id_name")),
    )
    op.create_index(
        op.f("ix_model_versions_model_id_stage"), "model_versions", ["model_id", "stage"]
    )
    op.create_table(
        "model_version_artifacts",
        sa.Column("model_version_id", sa.String(32), nullable=False),
        sa.Column("artifact_version_id", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_version_id"],
            ["model_versions.id"],
            name=op.f("fk_model_version_artifacts_model_version_id_model_versions"),
        ),
        sa.ForeignKeyConstraint(
            ["artifact_version_id"],
            ["artifact_versions.id"],
            name=op.f("fk_model_version_artifacts_artifact_version_id_artifact_versions"),
        ),
        sa.PrimaryKeyConstraint(
            "model_version_id", "artifact_version_id", name=op.f("pk_model_version_artifacts")
        ),
    )
    op.create_index(
        op.f("ix_model_version_artifacts_artifact_version_id"),
        "model_version_artifacts",
        ["artifact_version_id"],
    )
    op.create_table(
        "model_stage_history",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("model_version_id", sa.String(32), nullable=False),
        sa.Column("stage", sa.String(16), nullable=True),
        sa.Column("previous_stage", sa.String(16), nullable=True),
        sa.Column("user", sa.String(255), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["model_version_id"],
            ["model_versions.id"],
            name=op.f("fk_model_stage_history_model_version_id_model_versions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_stage_history")),
    )
    op.create_index(
        op.f("ix_model_stage_history_model_version_id"),
        "model_stage_history",
        ["model_version_id"],
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_model_stage_history_model_version_id"), table_name="model_stage_history")
    op.drop_table("model_stage_history")
    op.drop_index(
        op.f("ix_model_version_artifacts_artifact_version_id"),
        table_name="model_version_artifacts",
    )
    op.drop_table("model_version_artifacts")
    op.drop_index(op.f("ix_model_versions_model_id_stage"), table_name="model_versions")
    op.drop_table("model_versions")
    op.drop_table("models")
