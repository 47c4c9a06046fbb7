"""Reading and deleting runs over ``/api/v1``: runs (paged, filtered), a run page's data,
step runs with their inputs, outputs and logs, metadata, pipelines and their versions'
specs. Viewers read; deleting needs an editor."""

from __future__ import annotations

from typing import Any

from fastapi import Query, Request, Response
from pydantic import BaseModel, Field

from gristmill.errors import NotFoundError
from gristmill.server.api._common import (
    EDITOR,
    MAX_PAGE,
    Limit,
    Offset,
    Store,
    get_client,
    page,
    reply,
    sliced,
    store_router,
)
from gristmill.store import Entity, MetadataStore, RunRecord, Status

router = store_router("runs")

# Filters the store cannot apply (stack, tag, search) are applied here over its pages of
# runs, newest first, this many at a time.
_SCAN_PAGE = 2000


def _matches(run: RunRecord, stack: str | None, tag: str | None, search: str | None) -> bool:
    if stack is not None and run.stack.get("name") != stack:
        return False
    if tag is not None and tag not in run.tags:
        return False
    if search:
        needle = search.lower()
        haystack = (run.name, run.pipeline_name, run.experiment or "", *run.tags)
        if not run.id.startswith(needle) and not any(needle in h.lower() for h in haystack):
            return False
    return True


@router.get("/runs", summary="List runs, newest first")
def list_runs(
    request: Request,
    store: MetadataStore = Store,
    pipeline: str | None = Query(None, description="only this pipeline's runs"),
    status: str | None = Query(None, description=f"one of {', '.join(Status.ALL)}"),
    experiment: str | None = Query(None, description="only this experiment's runs"),
    stack: str | None = Query(None, description="only runs on the stack of this name"),
    tag: str | None = Query(None, description="only runs with this tag"),
    search: str | None = Query(None, description="in the name, pipeline, experiment, tags, id"),
    limit: int = Limit,
    offset: int = Offset,
    total: bool = Query(True, description="count the runs that match (false: total is null)"),
) -> Response:
    if status is not None and status not in Status.ALL:
        raise NotFoundError(f"no run status '{status}': use one of {', '.join(Status.ALL)}")
    where = {"pipeline": pipeline, "status": status, "experiment": experiment}
    if stack is None and tag is None and not search:
        runs = store.list_runs(**where, limit=limit, offset=offset) if limit else []
        count = store.count_runs(**where) if total else None
        return page(request, runs, limit=limit, offset=offset, total=count)
    # Scanned here: every run the store's own filters let through is looked at once.
    found: list[RunRecord] = []
    matched = 0
    scanned = 0
    while True:
        batch = store.list_runs(**where, limit=_SCAN_PAGE, offset=scanned)
        scanned += len(batch)
        for run in batch:
            if _matches(run, stack, tag, search):
                if offset <= matched < offset + limit:
                    found.append(run)
                matched += 1
        if len(batch) < _SCAN_PAGE or (not total and len(found) >= limit):
            break
    return page(request, found, limit=limit, offset=offset, total=matched if total else None)


@router.get("/runs/lookup", summary="A run by id, unique id prefix or name")
def lookup_run(request: Request, ref: str, store: MetadataStore = Store) -> Response:
    return reply(request, store.get_run(ref))


class DeleteRuns(BaseModel):
    run_ids: list[str] = Field(min_length=1)
    force: bool = False
    dry_run: bool = False


@router.post("/runs/delete", summary="Delete runs and what only they hold", dependencies=[EDITOR])
def delete_runs(request: Request, body: DeleteRuns, store: MetadataStore = Store) -> Response:
    return reply(request, store.delete_runs(body.run_ids, force=body.force, dry_run=body.dry_run))


@router.get("/runs/{run_id}/steps", summary="A run's step runs, in order")
def run_steps(request: Request, run_id: str, store: MetadataStore = Store) -> Response:
    steps = store.get_step_runs(run_id)
    if not steps:
        store.get_run(run_id)  # 404 for an unknown run; a run with no steps is []
    return reply(request, steps)


@router.get("/runs/{run_id}/page", summary="A run page's data in one call")
def run_page(request: Request, run_id: str, store: MetadataStore = Store) -> Response:
    """The run, its step runs, their inputs and outputs (artifact versions by name), and the
    latest metadata of the run and of each step run: what a run page shows."""
    run = store.get_run(run_id)
    steps = store.get_step_runs(run.id)
    ids = [s.id for s in steps]
    io = store.get_step_run_io(ids)
    step_metadata = store.get_metadata(Entity.STEP_RUN, ids)
    run_metadata = store.get_metadata(Entity.RUN, [run.id])[run.id]
    return reply(
        request,
        {
            "run": run,
            "steps": [
                {
                    **_plain(step),
                    "inputs": io.get(step.id, ({}, {}))[0],
                    "outputs": io.get(step.id, ({}, {}))[1],
                    "metadata": {m.key: m.value for m in step_metadata.get(step.id, [])},
                }
                for step in steps
            ],
            "metadata": {m.key: m.value for m in run_metadata},
        },
    )


def _plain(record: Any) -> dict[str, Any]:
    from gristmill.store.rest.wire import plain

    data: dict[str, Any] = plain(record)
    return data


@router.delete("/runs/{ref}", summary="Delete one run", dependencies=[EDITOR])
def delete_run(
    request: Request,
    ref: str,
    force: bool = False,
    dry_run: bool = False,
    store: MetadataStore = Store,
) -> Response:
    run = store.get_run(ref)
    return reply(request, store.delete_runs([run.id], force=force, dry_run=dry_run))


@router.get("/runs/{ref}", summary="A run by id, unique id prefix or name")
def get_run(request: Request, ref: str, store: MetadataStore = Store) -> Response:
    return reply(request, store.get_run(ref))


# -- step runs ------------------------------------------------------------------------------------


class StepRunIds(BaseModel):
    step_run_ids: list[str] = Field(max_length=10 * MAX_PAGE)


def _io(store: MetadataStore, ids: list[str]) -> dict[str, Any]:
    return {
        i: {"inputs": inputs, "outputs": outputs}
        for i, (inputs, outputs) in store.get_step_run_io(ids).items()
    }


@router.post("/step-runs/io", summary="Inputs and outputs of step runs (a read)")
def step_runs_io(request: Request, body: StepRunIds, store: MetadataStore = Store) -> Response:
    return reply(request, _io(store, body.step_run_ids))


@router.get("/step-runs/{step_run_id}", summary="A step run")
def get_step_run(request: Request, step_run_id: str, store: MetadataStore = Store) -> Response:
    return reply(request, store.get_step_run(step_run_id))


@router.get("/step-runs/{step_run_id}/io", summary="A step run's inputs and outputs")
def step_run_io(request: Request, step_run_id: str, store: MetadataStore = Store) -> Response:
    store.get_step_run(step_run_id)
    return reply(request, _io(store, [step_run_id])[step_run_id])


@router.get("/step-runs/{step_run_id}/logs-uri", summary="Where a step run's logs are")
def step_run_logs_uri(request: Request, step_run_id: str, store: MetadataStore = Store) -> Response:
    return reply(request, {"uri": store.get_logs_uri(step_run_id)})


@router.get("/step-runs/{step_run_id}/logs", summary="A step run's logs, from an offset")
def step_run_logs(
    request: Request,
    step_run_id: str,
    offset: int = Query(0, ge=0, description="characters already read"),
    store: MetadataStore = Store,
) -> Response:
    """The text from ``offset`` on, and ``next_offset`` to ask from next time; ``complete``
    once the step run has ended (a running step's logs are rewritten every second once it
    has run for a moment, so polling from ``next_offset`` follows them). A cache
    hit shows the logs of the step run it reused."""
    step = store.get_step_run(step_run_id)
    uri = store.get_logs_uri(step.id)
    if uri is None and step.cached_from:
        uri = store.get_logs_uri(step.cached_from)
    text = ""
    if uri is not None:
        run = store.get_run(step.run_id)
        text = get_client(request).artifact_store_for(run.stack, uri=uri).read_text(uri)
    return reply(
        request,
        {
            "step_run_id": step.id,
            "status": step.status,
            "text": text[offset:],
            "offset": offset,
            "next_offset": max(offset, len(text)),
            "complete": step.status in Status.FINISHED,
        },
    )


# -- metadata -------------------------------------------------------------------------------------


class MetadataQuery(BaseModel):
    entity_type: str
    entity_ids: list[str] = Field(max_length=10 * MAX_PAGE)


def _entity_type(name: str) -> str:
    if name not in Entity.ALL:
        raise NotFoundError(f"no entity type '{name}': use one of {', '.join(Entity.ALL)}")
    return name


@router.post("/metadata/query", summary="Metadata of entities (a read)")
def query_metadata(request: Request, body: MetadataQuery, store: MetadataStore = Store) -> Response:
    return reply(request, store.get_metadata(_entity_type(body.entity_type), body.entity_ids))


@router.get("/metadata/{entity_type}/{entity_id}", summary="Metadata of one entity")
def get_metadata(
    request: Request, entity_type: str, entity_id: str, store: MetadataStore = Store
) -> Response:
    return reply(request, store.get_metadata(_entity_type(entity_type), [entity_id])[entity_id])


# -- pipelines ------------------------------------------------------------------------------------


@router.get("/pipelines", summary="List pipelines")
def list_pipelines(
    request: Request, limit: int = Limit, offset: int = Offset, store: MetadataStore = Store
) -> Response:
    return sliced(request, store.list_pipelines(), limit=limit, offset=offset)


@router.get("/pipelines/{name}", summary="A pipeline")
def get_pipeline(request: Request, name: str, store: MetadataStore = Store) -> Response:
    return reply(request, store.get_pipeline(name))


@router.get("/pipeline-versions/{pipeline_version_id}", summary="A pipeline version's spec")
def get_pipeline_version(
    request: Request, pipeline_version_id: str, store: MetadataStore = Store
) -> Response:
    """``spec_json``: the spec as recorded (text); ``spec``: the same, parsed."""
    import json

    text = store.get_pipeline_spec(pipeline_version_id)
    return reply(request, {"id": pipeline_version_id, "spec_json": text, "spec": json.loads(text)})
