"""The run path over ``/api/v1``: what a pipeline run (or a remote worker) records through a
server: create a run, cache lookups, claim, mark running, publish or fail a step run, stop
steps, finish, heartbeats, metadata, reaping dead runs, external artifact versions. Each
route is one ``RunWriter`` call; writes need an editor, cache lookups a viewer."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response
from pydantic import BaseModel, Field

from gristmill.server.api._common import EDITOR, Store, reply, store_router
from gristmill.store import (
    ArtifactVersionRecord,
    MetadataStore,
    MetricPoint,
    NewArtifactVersion,
    RunRecord,
    StepRunRecord,
    StepStart,
)
from gristmill.store.base import STALE_AFTER_SECONDS

router = store_router("recording")


class NewRun(BaseModel):
    run: RunRecord
    step_runs: list[StepRunRecord]
    spec_json: str


@router.post(
    "/runs", summary="Create a run with its step runs", status_code=201, dependencies=[EDITOR]
)
def create_run(request: Request, body: NewRun, store: MetadataStore = Store) -> Response:
    store.create_run(body.run, body.step_runs, spec_json=body.spec_json)
    return reply(request, {"id": body.run.id, "name": body.run.name}, status_code=201)


@router.get("/cache/{cache_key}", summary="The latest completed step run with a cache key")
def find_cached(request: Request, cache_key: str, store: MetadataStore = Store) -> Response:
    """A cache hit (the step run, its outputs, the metadata it logged), or null."""
    return reply(request, store.find_cached(cache_key))


@router.get("/step-runs/{step_run_id}/cache-hit", summary="A step run as a cache hit")
def cache_hit_of(request: Request, step_run_id: str, store: MetadataStore = Store) -> Response:
    return reply(request, store.cache_hit_of(step_run_id))


class Running(BaseModel):
    started_at: float
    logs_uri: str | None = None


@router.post(
    "/step-runs/{step_run_id}/running", summary="Show a step run as running", dependencies=[EDITOR]
)
def mark_running(
    request: Request, step_run_id: str, body: Running, store: MetadataStore = Store
) -> Response:
    store.mark_running(step_run_id, started_at=body.started_at, logs_uri=body.logs_uri)
    return reply(request, {})


class Output(BaseModel):
    """One output of a step run: a new version (``new``) or one that exists (``existing``)."""

    name: str
    new: NewArtifactVersion | None = None
    existing: ArtifactVersionRecord | None = None


class Published(BaseModel):
    start: StepStart
    status: str
    ended_at: float
    outputs: list[Output] = []
    metadata: list[tuple[str, str, dict[str, Any]]] = []
    attempts: int = 1
    cached_from: str | None = None
    logs_uri: str | None = None
    metrics: list[MetricPoint] = []


def _outputs(outputs: list[Output]) -> dict[str, NewArtifactVersion | ArtifactVersionRecord]:
    from gristmill.errors import ConfigError

    found: dict[str, NewArtifactVersion | ArtifactVersionRecord] = {}
    for out in outputs:
        value = out.existing if out.existing is not None else out.new
        if value is None:
            raise ConfigError(f"output '{out.name}' has neither 'new' nor 'existing'")
        found[out.name] = value
    return found


@router.post(
    "/step-runs/{step_run_id}/publish",
    summary="Record a step run's outcome, outputs, metadata and metrics",
    dependencies=[EDITOR],
)
def publish_step_run(
    request: Request, step_run_id: str, body: Published, store: MetadataStore = Store
) -> Response:
    published = store.publish_step_run(
        step_run_id,
        start=body.start,
        status=body.status,
        ended_at=body.ended_at,
        outputs=_outputs(body.outputs),
        metadata=body.metadata,
        attempts=body.attempts,
        cached_from=body.cached_from,
        logs_uri=body.logs_uri,
        metrics=body.metrics,
    )
    return reply(request, published)


class Registered(BaseModel):
    new: NewArtifactVersion
    at: float


@router.post(
    "/artifact-versions",
    summary="Register an artifact version no step run produced",
    status_code=201,
    dependencies=[EDITOR],
)
def register_artifact_version(
    request: Request, body: Registered, store: MetadataStore = Store
) -> Response:
    return reply(request, store.register_artifact_version(body.new, at=body.at), status_code=201)


class Failed(BaseModel):
    start: StepStart
    error: str
    ended_at: float
    attempts: int
    logs_uri: str | None = None
    metadata: list[tuple[str, str, dict[str, Any]]] = []
    status: str = "failed"
    metrics: list[MetricPoint] = []


@router.post(
    "/step-runs/{step_run_id}/fail",
    summary="Record how a step run that did not complete ended",
    dependencies=[EDITOR],
)
def fail_step_run(
    request: Request, step_run_id: str, body: Failed, store: MetadataStore = Store
) -> Response:
    store.fail_step_run(
        step_run_id,
        start=body.start,
        error=body.error,
        ended_at=body.ended_at,
        attempts=body.attempts,
        logs_uri=body.logs_uri,
        metadata=body.metadata,
        status=body.status,
        metrics=body.metrics,
    )
    return reply(request, {})


class StopSteps(BaseModel):
    step_names: list[str]
    reason: str
    at: float


@router.post(
    "/runs/{run_id}/stop-steps", summary="Mark step runs that will not run", dependencies=[EDITOR]
)
def stop_step_runs(
    request: Request, run_id: str, body: StopSteps, store: MetadataStore = Store
) -> Response:
    store.stop_step_runs(run_id, body.step_names, reason=body.reason, at=body.at)
    return reply(request, {})


class Finished(BaseModel):
    status: str
    ended_at: float
    error: str | None = None
    environment: dict[str, Any] | None = None


@router.post("/runs/{run_id}/finish", summary="Set a run's final status", dependencies=[EDITOR])
def finish_run(
    request: Request, run_id: str, body: Finished, store: MetadataStore = Store
) -> Response:
    store.finish_run(
        run_id,
        status=body.status,
        ended_at=body.ended_at,
        error=body.error,
        environment=body.environment,
    )
    return reply(request, {})


class Beat(BaseModel):
    at: float


@router.post("/runs/{run_id}/heartbeat", summary="A run's heartbeat", dependencies=[EDITOR])
def heartbeat(request: Request, run_id: str, body: Beat, store: MetadataStore = Store) -> Response:
    store.heartbeat(run_id, body.at)
    return reply(request, {})


@router.post(
    "/runs/{run_id}/stop",
    summary="Ask a run to stop (it becomes stopping; what runs it ends it stopped)",
    dependencies=[EDITOR],
)
def request_stop(
    request: Request, run_id: str, body: Beat, store: MetadataStore = Store
) -> Response:
    return reply(request, {"status": store.request_stop(run_id, at=body.at)})


class Claim(BaseModel):
    at: float
    host: str
    pid: int
    environment: dict[str, Any] = {}


@router.post(
    "/step-runs/{step_run_id}/claim",
    summary="A worker takes a step run",
    dependencies=[EDITOR],
)
def claim_step_run(
    request: Request, step_run_id: str, body: Claim, store: MetadataStore = Store
) -> Response:
    store.claim_step_run(
        step_run_id, at=body.at, host=body.host, pid=body.pid, environment=body.environment
    )
    return reply(request, {})


class StepBeat(BaseModel):
    step_run_ids: list[str]
    at: float


@router.post(
    "/step-runs/heartbeat", summary="Workers' heartbeats for step runs", dependencies=[EDITOR]
)
def step_heartbeat(request: Request, body: StepBeat, store: MetadataStore = Store) -> Response:
    store.step_heartbeat(body.step_run_ids, body.at)
    return reply(request, {})


class NewMetadata(BaseModel):
    entity_type: str
    entity_id: str
    values: dict[str, Any]
    at: float


@router.post("/metadata", summary="Attach metadata to an entity", dependencies=[EDITOR])
def add_metadata(request: Request, body: NewMetadata, store: MetadataStore = Store) -> Response:
    store.add_metadata(body.entity_type, body.entity_id, body.values, body.at)
    return reply(request, {})


class Reap(BaseModel):
    now: float
    stale_after: float = Field(STALE_AFTER_SECONDS, gt=0)


@router.post("/runs/reap", summary="Mark runs whose process died as failed", dependencies=[EDITOR])
def reap_dead_runs(request: Request, body: Reap, store: MetadataStore = Store) -> Response:
    return reply(request, store.reap_dead_runs(body.now, stale_after=body.stale_after))
