"""Metric series, experiments and comparisons over ``/api/v1``: a run's metric names and
history, experiments (runs grouped by name), runs side by side. Recording points needs an
editor; everything else is a read."""

from __future__ import annotations

from fastapi import Query, Request, Response
from pydantic import BaseModel, Field

from gristmill.server.api._common import (
    EDITOR,
    MAX_PAGE,
    Limit,
    Offset,
    Store,
    get_client,
    reply,
    sliced,
    store_router,
)
from gristmill.store import MetadataStore, MetricPoint

router = store_router("metrics")


class Points(BaseModel):
    points: list[MetricPoint]


@router.post("/metric-points", summary="Record metric points", dependencies=[EDITOR])
def add_metric_points(request: Request, body: Points, store: MetadataStore = Store) -> Response:
    store.add_metric_points(body.points)
    return reply(request, {})


@router.get("/runs/{run_id}/metrics", summary="The names of a run's metric series")
def run_metric_names(request: Request, run_id: str, store: MetadataStore = Store) -> Response:
    store.get_run(run_id)
    return reply(request, store.metric_names([run_id])[run_id])


@router.get("/runs/{run_id}/metrics/{name}", summary="Every point of a run's metric series")
def metric_history(
    request: Request,
    run_id: str,
    name: str,
    step_run_id: str | None = Query(None, description="only points this step run logged"),
    store: MetadataStore = Store,
) -> Response:
    """Points by step; a NaN or infinite value comes as ``{"$float": "nan"|"inf"|"-inf"}``."""
    return reply(request, store.metric_history(run_id, name, step_run_id=step_run_id))


class RunIds(BaseModel):
    run_ids: list[str] = Field(max_length=10 * MAX_PAGE)


@router.post("/metric-names", summary="Metric series names of runs (a read)")
def metric_names(request: Request, body: RunIds, store: MetadataStore = Store) -> Response:
    return reply(request, store.metric_names(body.run_ids))


@router.get("/experiments", summary="List experiments, most recently run first")
def list_experiments(
    request: Request, limit: int = Limit, offset: int = Offset, store: MetadataStore = Store
) -> Response:
    return sliced(request, store.list_experiments(), limit=limit, offset=offset)


_Runs = Query(default_factory=list, description="run ids or names")
_Metrics = Query(None, description="only these metrics")


@router.get("/comparison", summary="Runs side by side: parameters and final metrics")
def comparison(
    request: Request,
    runs: list[str] = _Runs,
    experiment: str | None = Query(None, description="the latest runs of this experiment"),
    last: int = Query(10, ge=1, le=MAX_PAGE, description="how many of the experiment's runs"),
    metrics: list[str] | None = _Metrics,
    sort: str | None = Query(None, description="a column; '-' first for descending"),
) -> Response:
    """``{"columns": [...], "rows": [{column: value}]}`` as ``gristmill runs compare``."""
    found = get_client(request).comparison(
        runs, metrics=metrics, sort=sort, experiment=experiment, last=last
    )
    return reply(request, {"columns": found.columns, "rows": found.rows})
