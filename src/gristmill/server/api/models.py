"""The model registry over ``/api/v1``: models, their versions, stages (promote), stage
history and linked artifact versions. Viewers read; creating, promoting, linking and
deleting need an editor. A stage change is recorded as done by the caller's user."""

from __future__ import annotations

import time

from fastapi import Query, Request, Response
from pydantic import BaseModel

from gristmill.server.api._common import (
    EDITOR,
    EditorCaller,
    Limit,
    Offset,
    Store,
    reply,
    sliced,
    store_router,
)
from gristmill.server.auth import Principal
from gristmill.store import MetadataStore

router = store_router("models")


@router.get("/models", summary="List models, by name")
def list_models(
    request: Request,
    artifact: str | None = Query(None, description="only models linked to this artifact"),
    limit: int = Limit,
    offset: int = Offset,
    store: MetadataStore = Store,
) -> Response:
    models = store.list_models()
    if artifact is not None:
        names = set(store.find_models_with_artifact(artifact))
        models = [m for m in models if m.name in names]
    return sliced(request, models, limit=limit, offset=offset)


@router.get("/models/{name}", summary="A model")
def get_model(request: Request, name: str, store: MetadataStore = Store) -> Response:
    return reply(request, store.get_model(name))


class ModelBody(BaseModel):
    description: str | None = None
    license: str | None = None
    tags: list[str] = []
    details: dict[str, str] | None = None
    at: float | None = None


@router.put("/models/{name}", summary="Create a model or update its fields", dependencies=[EDITOR])
def save_model(
    request: Request, name: str, body: ModelBody, store: MetadataStore = Store
) -> Response:
    record = store.save_model(
        name,
        description=body.description,
        license=body.license,
        tags=body.tags,
        details=body.details,
        at=body.at if body.at is not None else time.time(),
    )
    return reply(request, record)


@router.delete("/models/{name}", summary="Delete a model and its versions", dependencies=[EDITOR])
def delete_model(
    request: Request, name: str, force: bool = False, store: MetadataStore = Store
) -> Response:
    """Refused (409) while a version is in production, unless ``force``."""
    return reply(request, store.delete_model(name, force=force))


@router.get("/models/{name}/versions", summary="A model's versions, newest first")
def list_model_versions(
    request: Request,
    name: str,
    stage: str | None = Query(None, description="only versions in this stage"),
    limit: int = Limit,
    offset: int = Offset,
    store: MetadataStore = Store,
) -> Response:
    versions = store.list_model_versions(name, stage=stage)
    return sliced(request, versions, limit=limit, offset=offset)


class NewVersion(BaseModel):
    name: str | None = None
    description: str | None = None
    tags: list[str] = []
    run_id: str | None = None
    at: float | None = None


@router.post(
    "/models/{name}/versions",
    summary="Create a model's next version",
    status_code=201,
    dependencies=[EDITOR],
)
def create_model_version(
    request: Request, name: str, body: NewVersion, store: MetadataStore = Store
) -> Response:
    record = store.create_model_version(
        name,
        name=body.name,
        description=body.description,
        tags=body.tags,
        run_id=body.run_id,
        at=body.at if body.at is not None else time.time(),
    )
    return reply(request, record, status_code=201)


@router.get("/models/{name}/versions/lookup", summary="A model version by reference")
def lookup_model_version(
    request: Request, name: str, ref: str, store: MetadataStore = Store
) -> Response:
    """``ref``: a number, a stage (``production``), ``latest``, a version's name or id."""
    return reply(request, store.get_model_version(name, ref))


@router.get("/models/{name}/versions/{ref}", summary="A model version by reference")
def get_model_version(
    request: Request, name: str, ref: str, store: MetadataStore = Store
) -> Response:
    return reply(request, store.get_model_version(name, ref))


class StageBody(BaseModel):
    stage: str | None
    force: bool = False
    note: str | None = None
    at: float | None = None


def _set_stage(
    store: MetadataStore, version_id: str, body: StageBody, principal: Principal
) -> object:
    return store.set_model_version_stage(
        version_id,
        body.stage,
        force=body.force,
        user=principal.user,
        at=body.at if body.at is not None else time.time(),
        note=body.note,
    )


@router.post("/models/{name}/versions/{ref}/promote", summary="Move a model version to a stage")
def promote(
    request: Request,
    name: str,
    ref: str,
    body: StageBody,
    store: MetadataStore = Store,
    principal: Principal = EditorCaller,
) -> Response:
    """``stage``: staging, production, archived, or null/"none" (out of every stage). If
    another version holds staging or production: 409 naming it, unless ``force`` (that
    version is then archived)."""
    version = store.get_model_version(name, ref)
    return reply(request, _set_stage(store, version.id, body, principal))


@router.post("/model-versions/{version_id}/stage", summary="Move a model version to a stage")
def set_stage(
    request: Request,
    version_id: str,
    body: StageBody,
    store: MetadataStore = Store,
    principal: Principal = EditorCaller,
) -> Response:
    return reply(request, _set_stage(store, version_id, body, principal))


@router.get("/model-versions/{version_id}/stages", summary="A model version's stage history")
def stage_history(request: Request, version_id: str, store: MetadataStore = Store) -> Response:
    return reply(request, store.get_stage_history(version_id))


class Links(BaseModel):
    links: dict[str, str]
    at: float | None = None


@router.post(
    "/model-versions/{version_id}/artifacts",
    summary="Link artifact versions to a model version",
    dependencies=[EDITOR],
)
def link_artifacts(
    request: Request, version_id: str, body: Links, store: MetadataStore = Store
) -> Response:
    """``links``: artifact version id → kind (model, data or deployment)."""
    at = body.at if body.at is not None else time.time()
    store.link_model_artifacts(version_id, body.links, at=at)
    return reply(request, {})


@router.get(
    "/model-versions/{version_id}/artifacts", summary="Artifact versions linked to a model version"
)
def list_artifacts(request: Request, version_id: str, store: MetadataStore = Store) -> Response:
    return reply(request, store.list_model_artifacts(version_id))


@router.delete(
    "/model-versions/{version_id}", summary="Delete a model version", dependencies=[EDITOR]
)
def delete_model_version(
    request: Request, version_id: str, force: bool = False, store: MetadataStore = Store
) -> Response:
    """Refused (409) for a version in production, unless ``force``."""
    store.delete_model_version(version_id, force=force)
    return reply(request, {})
