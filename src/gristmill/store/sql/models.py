"""The model registry on the SQL store (``ModelRegistry``): models, numbered versions,
stages with their history, and the artifact versions linked to each version. A stage change
takes the model's row lock first (PostgreSQL; SQLite has one writer), so two promotions of
one model cannot both win a stage."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from gristmill.errors import NotFoundError, StoreError, did_you_mean
from gristmill.models.definition import ModelStages
from gristmill.store.base import ModelRegistry
from gristmill.store.ids import model_id, new_model_version_id
from gristmill.store.metadata_values import dumps
from gristmill.store.records import (
    Entity,
    ModelArtifactLink,
    ModelRecord,
    ModelVersionRecord,
    StageChange,
)
from gristmill.store.sql._lazy import sa
from gristmill.store.sql._lazy import schema as s
from gristmill.store.sql.engine import SQLEngine, loads
from gristmill.store.sql.rows import artifact_version_query, artifact_version_record

_ARTIFACT_KINDS = ("model", "data", "deployment")


class SQLModelRegistry(SQLEngine, ModelRegistry):
    # -- models -------------------------------------------------------------------------------

    def save_model(
        self,
        name: str,
        *,
        description: str | None = None,
        license: str | None = None,
        tags: Sequence[str] = (),
        details: Mapping[str, str] | None = None,
        at: float,
    ) -> ModelRecord:
        new_id = model_id(name)

        def work(conn: sa.Connection) -> None:
            row = conn.execute(sa.select(s.models).where(s.models.c.id == new_id)).first()
            if row is None:
                conn.execute(
                    sa.insert(s.models),
                    {
                        "id": new_id,
                        "name": name,
                        "description": description,
                        "license": license,
                        "tags": dumps(list(dict.fromkeys(tags))),
                        "details": dumps(dict(details or {})),
                        "created_at": at,
                        "updated_at": at,
                        "last_version": 0,
                    },
                )
                return
            changes: dict[str, Any] = {}
            if description is not None and description != row.description:
                changes["description"] = description
            if license is not None and license != row.license:
                changes["license"] = license
            known = loads(row.tags, [])
            if any(t not in known for t in tags):
                changes["tags"] = dumps(list(dict.fromkeys([*known, *tags])))
            old_details = loads(row.details, {})
            if details and {**old_details, **details} != old_details:
                changes["details"] = dumps({**old_details, **details})
            if changes:
                conn.execute(
                    sa.update(s.models)
                    .where(s.models.c.id == new_id)
                    .values(updated_at=at, **changes)
                )

        self._retrying(work, f"saving model '{name}'")
        return self.get_model(name)

    def get_model(self, name: str) -> ModelRecord:
        with self._reading(f"reading model '{name}'") as conn:
            row = conn.execute(sa.select(s.models).where(s.models.c.name == name)).first()
            if row is None:
                names = conn.execute(sa.select(s.models.c.name)).scalars().all()
                raise NotFoundError(_no_model(name, names))
            return self._model_record(conn, row)

    def list_models(self) -> list[ModelRecord]:
        with self._reading("listing models") as conn:
            rows = conn.execute(sa.select(s.models).order_by(s.models.c.name)).all()
            return [self._model_record(conn, r) for r in rows]

    def _model_record(self, conn: sa.Connection, row: Any) -> ModelRecord:
        mv = s.model_versions.c
        count, latest = conn.execute(
            sa.select(sa.func.count(mv.id), sa.func.max(mv.number)).where(mv.model_id == row.id)
        ).one()
        return ModelRecord(
            id=row.id,
            name=row.name,
            created_at=row.created_at,
            updated_at=row.updated_at,
            description=row.description,
            license=row.license,
            tags=loads(row.tags, []),
            details=loads(row.details, {}),
            version_count=int(count or 0),
            latest_version=latest,
        )

    def delete_model(self, name: str, *, force: bool = False) -> list[ModelVersionRecord]:
        model = self.get_model(name)
        versions = self.list_model_versions(name)
        in_production = [v for v in versions if v.stage == ModelStages.PRODUCTION]
        if in_production and not force:
            raise StoreError(
                f"refusing to delete model '{name}': its version {_label(in_production[0])} is "
                "in production. Move it out of production first, or delete anyway with "
                "--force (force=True)"
            )

        def work(conn: sa.Connection) -> None:
            for version in versions:
                _delete_version_rows(conn, version.id)
            conn.execute(sa.delete(s.models).where(s.models.c.id == model.id))

        self._retrying(work, f"deleting model '{name}'")
        return versions

    # -- versions -----------------------------------------------------------------------------

    def create_model_version(
        self,
        model_name: str,
        *,
        name: str | None = None,
        description: str | None = None,
        tags: Sequence[str] = (),
        run_id: str | None = None,
        at: float,
    ) -> ModelVersionRecord:
        model = self.get_model(model_name)
        new_id = new_model_version_id()

        def work(conn: sa.Connection) -> None:
            # Bumping the model's counter locks its row until commit (portable: no RETURNING).
            conn.execute(
                sa.update(s.models)
                .where(s.models.c.id == model.id)
                .values(last_version=s.models.c.last_version + 1)
            )
            number = conn.execute(
                sa.select(s.models.c.last_version).where(s.models.c.id == model.id)
            ).scalar_one()
            if name is not None:
                taken = conn.execute(
                    sa.select(s.model_versions.c.number).where(
                        s.model_versions.c.model_id == model.id, s.model_versions.c.name == name
                    )
                ).first()
                if taken is not None:
                    raise StoreError(
                        f"model '{model_name}' already has a version named '{name}' "
                        f"(version {taken[0]}); use it, or give another name"
                    )
            conn.execute(
                sa.insert(s.model_versions),
                {
                    "id": new_id,
                    "model_id": model.id,
                    "number": number,
                    "name": name,
                    "stage": None,
                    "description": description,
                    "tags": dumps(list(dict.fromkeys(tags))),
                    "run_id": run_id,
                    "created_at": at,
                    "updated_at": at,
                },
            )

        self._retrying(work, f"creating a version of model '{model_name}'")
        return self._version_by_id(new_id)

    def _version_by_id(self, version_id: str) -> ModelVersionRecord:
        with self._reading("reading a model version") as conn:
            row = conn.execute(_version_query().where(s.model_versions.c.id == version_id)).first()
        if row is None:
            raise NotFoundError(f"no model version with id '{version_id}'")
        return _version_record(row)

    def get_model_version(self, model_name: str, ref: str | int) -> ModelVersionRecord:
        model = self.get_model(model_name)
        text = str(ref)
        mv = s.model_versions.c
        query = _version_query().where(mv.model_id == model.id)
        with self._reading(f"reading version '{text}' of model '{model_name}'") as conn:
            if text == ModelStages.LATEST:
                row = conn.execute(query.order_by(mv.number.desc()).limit(1)).first()
            elif text.isdigit() and not isinstance(ref, bool):
                row = conn.execute(query.where(mv.number == int(text))).first()
            elif text in ModelStages.ALL:
                stage = None if text == ModelStages.NONE else text
                row = conn.execute(
                    query.where(mv.stage == stage).order_by(mv.number.desc()).limit(1)
                ).first()
            else:
                row = conn.execute(query.where(mv.name == text)).first()
                if row is None and len(text) == 32:
                    row = conn.execute(query.where(mv.id == text)).first()
        if row is not None:
            return _version_record(row)
        if model.version_count == 0:
            raise NotFoundError(
                f"model '{model_name}' has no versions yet: run a pipeline with "
                f"Model(name='{model_name}'), or `gristmill models register {model_name} "
                "--artifact NAME:VERSION`"
            )
        if text in ModelStages.ALL:
            raise NotFoundError(
                f"model '{model_name}' has no version in stage '{text}'; put one there with "
                f"`gristmill models promote {model_name} VERSION {text}`"
            )
        names = [v.name for v in self.list_model_versions(model_name) if v.name]
        raise NotFoundError(
            f"model '{model_name}' has no version '{text}' (its versions go up to "
            f"{model.latest_version}{'; names: ' + ', '.join(names) if names else ''})"
            f"{did_you_mean(text, names) if names else ''}"
        )

    def list_model_versions(
        self, model_name: str, *, stage: str | None = None
    ) -> list[ModelVersionRecord]:
        model = self.get_model(model_name)
        mv = s.model_versions.c
        query = _version_query().where(mv.model_id == model.id)
        if stage is not None:
            query = query.where(mv.stage == (None if stage == ModelStages.NONE else stage))
        with self._reading(f"listing versions of model '{model_name}'") as conn:
            rows = conn.execute(query.order_by(mv.number.desc())).all()
        return [_version_record(r) for r in rows]

    def delete_model_version(self, model_version_id: str, *, force: bool = False) -> None:
        version = self._version_by_id(model_version_id)
        if version.stage == ModelStages.PRODUCTION and not force:
            raise StoreError(
                f"refusing to delete {version.model_name} version {_label(version)}: it is in "
                "production. Promote another version first, or delete anyway with --force "
                "(force=True)"
            )

        def work(conn: sa.Connection) -> None:
            _delete_version_rows(conn, model_version_id)

        self._retrying(work, f"deleting {version.model_name} version {_label(version)}")

    # -- stages -------------------------------------------------------------------------------

    def set_model_version_stage(
        self,
        model_version_id: str,
        stage: str | None,
        *,
        force: bool = False,
        user: str,
        at: float,
        note: str | None = None,
    ) -> ModelVersionRecord:
        stage = None if stage in (None, ModelStages.NONE) else stage
        if stage is not None and stage not in ModelStages.ALL:
            raise StoreError(
                f"'{stage}' is not a stage: use {', '.join(ModelStages.ALL)}"
                f"{did_you_mean(stage, ModelStages.ALL)}"
            )
        version = self._version_by_id(model_version_id)
        mv = s.model_versions.c

        def work(conn: sa.Connection) -> None:
            model_key = conn.execute(
                sa.select(mv.model_id).where(mv.id == model_version_id)
            ).scalar_one()
            # Lock the model row: concurrent stage changes of one model queue here.
            conn.execute(
                sa.select(s.models.c.id).where(s.models.c.id == model_key).with_for_update()
            ).first()
            current = conn.execute(
                sa.select(mv.stage).where(mv.id == model_version_id)
            ).scalar_one()
            if current == stage:
                return
            if stage in ModelStages.EXCLUSIVE:
                holders = conn.execute(
                    _version_query().where(
                        mv.model_id == model_key, mv.stage == stage, mv.id != model_version_id
                    )
                ).all()
                if holders and not force:
                    held = _version_record(holders[0])
                    raise StoreError(
                        f"{version.model_name} version {_label(held)} is in {stage}; move it "
                        f"out first, or pass --force (force=True) to archive it and put "
                        f"version {_label(version)} in {stage}"
                    )
                for holder in holders:
                    _change_stage(
                        conn,
                        holder.id,
                        ModelStages.ARCHIVED,
                        stage,
                        user,
                        at,
                        f"replaced in {stage} by version {_label(version)}",
                    )
            _change_stage(conn, model_version_id, stage, current, user, at, note)

        self._retrying(
            work, f"moving {version.model_name} version {_label(version)} to {stage or 'none'}"
        )
        return self._version_by_id(model_version_id)

    def get_stage_history(self, model_version_id: str) -> list[StageChange]:
        h = s.model_stage_history.c
        with self._reading("reading a model version's stage history") as conn:
            rows = conn.execute(
                sa.select(s.model_stage_history)
                .where(h.model_version_id == model_version_id)
                .order_by(h.id)
            ).all()
        return [
            StageChange(
                model_version_id=r.model_version_id,
                stage=r.stage,
                previous_stage=r.previous_stage,
                user=r.user,
                at=r.at,
                note=r.note,
            )
            for r in rows
        ]

    # -- artifacts ----------------------------------------------------------------------------

    def link_model_artifacts(
        self, model_version_id: str, links: Mapping[str, str], *, at: float
    ) -> None:
        for kind in links.values():
            if kind not in _ARTIFACT_KINDS:
                raise StoreError(f"artifact link kind '{kind}' is not one of {_ARTIFACT_KINDS}")
        if not links:
            return
        mva = s.model_version_artifacts.c

        def work(conn: sa.Connection) -> None:
            known = set(
                conn.execute(
                    sa.select(mva.artifact_version_id).where(
                        mva.model_version_id == model_version_id,
                        mva.artifact_version_id.in_(list(links)),
                    )
                ).scalars()
            )
            rows = [
                {
                    "model_version_id": model_version_id,
                    "artifact_version_id": av_id,
                    "kind": kind,
                    "created_at": at,
                }
                for av_id, kind in links.items()
                if av_id not in known
            ]
            if rows:
                conn.execute(sa.insert(s.model_version_artifacts), rows)

        self._retrying(work, "linking artifact versions to a model version")

    def list_model_artifacts(self, model_version_id: str) -> list[ModelArtifactLink]:
        mva = s.model_version_artifacts.c
        query = (
            artifact_version_query()
            .add_columns(mva.kind, mva.created_at.label("linked_at"))
            .join(
                s.model_version_artifacts,
                mva.artifact_version_id == s.artifact_versions.c.id,
            )
            .where(mva.model_version_id == model_version_id)
            .order_by(mva.created_at, s.artifacts.c.name, s.artifact_versions.c.version)
        )
        with self._reading("reading a model version's artifacts") as conn:
            rows = conn.execute(query).all()
        return [ModelArtifactLink(artifact_version_record(r), r.kind, r.linked_at) for r in rows]

    def find_models_with_artifact(self, artifact_name: str) -> list[str]:
        mva = s.model_version_artifacts.c
        av = s.artifact_versions.c
        query = (
            sa.select(s.models.c.name)
            .distinct()
            .select_from(s.model_version_artifacts)
            .join(s.artifact_versions, av.id == mva.artifact_version_id)
            .join(s.artifacts, s.artifacts.c.id == av.artifact_id)
            .join(s.model_versions, s.model_versions.c.id == mva.model_version_id)
            .join(s.models, s.models.c.id == s.model_versions.c.model_id)
            .where(s.artifacts.c.name == artifact_name)
        )
        with self._reading(f"finding the models of artifact '{artifact_name}'") as conn:
            return sorted(conn.execute(query).scalars())


def model_linked_versions(conn: sa.Connection, artifact_version_ids: Sequence[str]) -> list[str]:
    """``model:version`` of the model versions that link any of these artifact versions (run
    deletion refuses to cut them)."""
    mva = s.model_version_artifacts.c
    mv = s.model_versions.c
    found = conn.execute(
        sa.select(s.models.c.name, mv.number, mv.name)
        .distinct()
        .select_from(s.model_version_artifacts)
        .join(s.model_versions, mv.id == mva.model_version_id)
        .join(s.models, s.models.c.id == mv.model_id)
        .where(mva.artifact_version_id.in_(list(artifact_version_ids)))
    ).all()
    return sorted(f"{model}:{name or number}" for model, number, name in found)


def _change_stage(
    conn: sa.Connection,
    version_id: str,
    stage: str | None,
    previous: str | None,
    user: str,
    at: float,
    note: str | None,
) -> None:
    conn.execute(
        sa.update(s.model_versions)
        .where(s.model_versions.c.id == version_id)
        .values(stage=stage, updated_at=at)
    )
    conn.execute(
        sa.insert(s.model_stage_history),
        {
            "model_version_id": version_id,
            "stage": stage,
            "previous_stage": previous,
            "user": user,
            "at": at,
            "note": note,
        },
    )


def _delete_version_rows(conn: sa.Connection, version_id: str) -> None:
    conn.execute(
        sa.delete(s.model_version_artifacts).where(
            s.model_version_artifacts.c.model_version_id == version_id
        )
    )
    conn.execute(
        sa.delete(s.model_stage_history).where(
            s.model_stage_history.c.model_version_id == version_id
        )
    )
    meta = s.metadata_entries.c
    conn.execute(
        sa.delete(s.metadata_entries).where(
            sa.and_(meta.entity_type == Entity.MODEL_VERSION, meta.entity_id == version_id)
        )
    )
    conn.execute(sa.delete(s.model_versions).where(s.model_versions.c.id == version_id))


def _version_query() -> Any:
    return sa.select(s.model_versions, s.models.c.name.label("model_name")).join(
        s.models, s.models.c.id == s.model_versions.c.model_id
    )


def _version_record(row: Any) -> ModelVersionRecord:
    return ModelVersionRecord(
        id=row.id,
        model_name=row.model_name,
        number=row.number,
        created_at=row.created_at,
        updated_at=row.updated_at,
        name=row.name,
        stage=row.stage,
        description=row.description,
        tags=loads(row.tags, []),
        run_id=row.run_id,
    )


def _label(version: ModelVersionRecord) -> str:
    return f"{version.number} ('{version.name}')" if version.name else str(version.number)


def _no_model(name: str, names: Sequence[str]) -> str:
    return (
        f"no model named '{name}'{did_you_mean(name, names)}; `gristmill models list` shows "
        f"them, and a run with Model(name='{name}') creates it"
    )
