"""Artifacts and their versions over ``/api/v1``: names, versions (paged, filtered by name,
run or content), one version by reference, lineage up and down. Read only (versions are
created by the run path, ``recording.py``)."""

from __future__ import annotations

from fastapi import Query, Request, Response

from gristmill.errors import ConfigError
from gristmill.server.api._common import Limit, Offset, Store, page, reply, sliced, store_router
from gristmill.store import MetadataStore

router = store_router("artifacts")


@router.get("/artifacts", summary="Every artifact's name, sorted")
def list_artifacts(
    request: Request, limit: int = Limit, offset: int = Offset, store: MetadataStore = Store
) -> Response:
    return sliced(request, store.list_artifact_names(), limit=limit, offset=offset)


@router.get("/artifact-versions", summary="List artifact versions, newest first")
def list_artifact_versions(
    request: Request,
    name: str | None = Query(None, description="only versions of this artifact"),
    run_id: str | None = Query(None, description="only outputs of this run's step runs"),
    content_hash: str | None = Query(None, description="only versions holding these bytes"),
    limit: int = Limit,
    offset: int = Offset,
    store: MetadataStore = Store,
) -> Response:
    """``total`` is null (counting would cost a scan): follow ``next_offset`` instead."""
    versions = store.list_artifact_versions(
        name=name, run_id=run_id, content_hash=content_hash, limit=limit, offset=offset
    )
    last = len(versions) < limit
    return page(
        request,
        versions,
        limit=limit,
        offset=offset,
        total=offset + len(versions) if last else None,
    )


@router.get("/artifact-versions/lookup", summary="An artifact version by reference")
def lookup_artifact_version(request: Request, ref: str, store: MetadataStore = Store) -> Response:
    """``ref``: an id or id prefix, ``name:version``, or ``name`` (the latest version)."""
    return reply(request, store.get_artifact_version(ref))


@router.get("/artifact-versions/{ref}/lineage", summary="Lineage of an artifact version")
def lineage(
    request: Request,
    ref: str,
    direction: str = Query("upstream", description="upstream or downstream"),
    store: MetadataStore = Store,
) -> Response:
    """Everything reached from the version: artifact versions, step runs, and edges
    ``[input version, step run, output version]``."""
    if direction not in ("upstream", "downstream"):
        raise ConfigError(f"direction must be 'upstream' or 'downstream', not '{direction}'")
    version = store.get_artifact_version(ref)
    return reply(request, store.lineage(version.id, direction=direction))


@router.get("/artifact-versions/{ref}", summary="An artifact version by reference")
def get_artifact_version(request: Request, ref: str, store: MetadataStore = Store) -> Response:
    return reply(request, store.get_artifact_version(ref))
