"""What the dashboard's pages show, read through the server's ``Client``: rows of runs, a
run's DAG and step states, an artifact's lineage graph, runs side by side with their metric
series, models and stacks. Plain data for the templates and the live JSON; no HTTP here."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from gristmill.errors import GristmillError, NotFoundError
from gristmill.server.dashboard.charts import Chart, line_chart
from gristmill.server.dashboard.graph import Layout, Node, layout
from gristmill.store import Entity, Status

if TYPE_CHECKING:
    from gristmill.client import ArtifactVersion, Client, Run, StepRun

PAGE_SIZE = 50
# A search or tag filter reads this many of the newest runs (matching ones are shown): the
# store filters by pipeline, status and experiment itself, not by text.
SEARCH_WINDOW = 2000
LINEAGE_NODES = 150  # more nodes than this are listed, not drawn
LOG_CHARS = 200_000  # the tail of a step's log shown on its page


def etag_of(payload: Any) -> str:
    """A strong ETag of a JSON-able payload."""
    raw = json.dumps(payload, sort_keys=True, default=str).encode()
    return '"' + hashlib.blake2b(raw, digest_size=12).hexdigest() + '"'


# -- runs list ----------------------------------------------------------------------------------


@dataclass
class RunFilter:
    pipeline: str | None = None
    status: str | None = None
    experiment: str | None = None
    tag: str | None = None
    q: str | None = None
    page: int = 1

    @property
    def searching(self) -> bool:
        return bool(self.q or self.tag)

    def query(self, **changes: Any) -> str:
        """The filter as a query string (with ``changes``), for links."""
        from urllib.parse import urlencode

        values = {
            "pipeline": self.pipeline,
            "status": self.status,
            "experiment": self.experiment,
            "tag": self.tag,
            "q": self.q,
            "page": self.page if self.page != 1 else None,
            **changes,
        }
        return urlencode({k: v for k, v in values.items() if v not in (None, "")})


@dataclass
class RunPage:
    runs: list[dict[str, Any]]
    total: int
    page: int
    pages: int
    window_limited: bool = False

    @property
    def active(self) -> bool:
        return any(r["status"] in (Status.PENDING, Status.RUNNING) for r in self.runs)


def run_row(run: Run) -> dict[str, Any]:
    record = run._record
    return {
        "id": run.id,
        "name": run.name,
        "pipeline": run.pipeline_name,
        "status": run.status,
        "created_at": record.created_at,
        "duration": run.duration,
        "stack": (record.stack or {}).get("name"),
        "tags": list(record.tags),
        "experiment": run.experiment,
    }


def _matches(run: Run, wanted: RunFilter) -> bool:
    if wanted.tag and wanted.tag not in run.tags:
        return False
    if wanted.q:
        needle = wanted.q.lower()
        haystack = [run.name, run.id, run.pipeline_name, run.experiment, *run.tags]
        return any(needle in text.lower() for text in haystack)
    return True


def list_runs(client: Client, wanted: RunFilter) -> RunPage:
    page = max(wanted.page, 1)
    filters = {
        "pipeline": wanted.pipeline or None,
        "status": wanted.status or None,
        "experiment": wanted.experiment or None,
    }
    if not wanted.searching:
        total = client.count_runs(**filters)
        runs = client.list_runs(**filters, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
        return RunPage([run_row(r) for r in runs], total, page, _pages(total))
    found: list[Run] = []
    scanned = 0
    while scanned < SEARCH_WINDOW:
        batch = client.list_runs(**filters, limit=500, offset=scanned)
        scanned += len(batch)
        found += [r for r in batch if _matches(r, wanted)]
        if len(batch) < 500:
            break
    start = (page - 1) * PAGE_SIZE
    shown = found[start : start + PAGE_SIZE]
    limited = scanned >= SEARCH_WINDOW
    return RunPage([run_row(r) for r in shown], len(found), page, _pages(len(found)), limited)


def _pages(total: int) -> int:
    return max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1)


# -- a run: its DAG, step states, a step's panel ------------------------------------------------


def step_detail(step: StepRun | None) -> str:
    if step is None:
        return "not started"
    if step.status == Status.CACHED:
        return "cache hit"
    if step.duration is not None:
        from gristmill.server.dashboard.render import duration

        return duration(step.duration)
    if step.status == Status.RUNNING and step.started_at is not None:
        from gristmill.server.dashboard.render import duration

        return duration(time.time() - step.started_at.timestamp())
    return step.status


def run_graph(run: Run) -> Layout:
    """The run's pipeline as a DAG, each step coloured by its status."""
    spec = run.spec
    steps = run.steps
    nodes = []
    edges = []
    for step_spec in spec.steps:
        step = steps.get(step_spec.id)
        nodes.append(
            Node(
                id=step_spec.id,
                label=step_spec.id,
                kind="step",
                status=step.status if step is not None else Status.PENDING,
                detail=step_detail(step),
                href=f"?step={quote(step_spec.id)}",
            )
        )
        edges += [(upstream, step_spec.id) for upstream in sorted(step_spec.upstream())]
    return layout(nodes, edges)


def run_state(run: Run) -> dict[str, Any]:
    """What the run page updates while the run goes on: its status and each step's."""
    steps = run.steps
    return {
        "id": run.id,
        "status": run.status,
        "finished": run.status in Status.FINISHED,
        "duration": run.duration,
        "error": run.error,
        "steps": {
            name: {
                "status": step.status,
                "detail": step_detail(step),
                "duration": step.duration,
                "cached": step.status == Status.CACHED,
                "attempts": step.attempts,
            }
            for name, step in steps.items()
        },
    }


def choose_step(run: Run, wanted: str | None) -> StepRun | None:
    """The step whose panel is open: the one asked for, else the first failed, running or
    (for a finished run) last step."""
    steps = run.steps
    if wanted:
        if wanted not in steps:
            run.step(wanted)  # NotFoundError with the closest step names
        return steps[wanted]
    for status in (Status.FAILED, Status.RUNNING):
        for step in steps.values():
            if step.status == status:
                return step
    return next(reversed(steps.values()), None) if steps else None


def step_logs(step: StepRun) -> tuple[str, str | None]:
    """(the step's logs or their tail, a note on why there are none)."""
    try:
        text = step.logs()
    except GristmillError as exc:
        return "", f"the logs cannot be read: {exc}"
    if not text:
        if step.status in (Status.PENDING, Status.RUNNING):
            return "", "nothing logged yet; this panel follows the logs while the step runs"
        return "", "the step printed and logged nothing"
    if len(text) > LOG_CHARS:
        return "…" + text[-LOG_CHARS:], None
    return text, None


# -- artifacts ----------------------------------------------------------------------------------


@dataclass
class LineageView:
    layout: Layout | None
    listed: list[tuple[str, str, str]] = field(default_factory=list)  # (kind, id, label) if too big


def lineage_graph(client: Client, version: ArtifactVersion) -> LineageView:
    """The artifact version with everything upstream and downstream of it: artifact versions
    and the step runs between them, as one graph."""
    up = client.lineage(version.id, direction="upstream").graph
    down = client.lineage(version.id, direction="downstream").graph
    versions = {**up.artifact_versions, **down.artifact_versions}
    step_runs = {**up.step_runs, **down.step_runs}
    triples = list(dict.fromkeys([*up.edges, *down.edges]))
    nodes: list[Node] = []
    for av_id, record in versions.items():
        nodes.append(
            Node(
                id="a:" + av_id,
                label=f"{record.artifact_name}:{record.version}",
                kind="artifact",
                status="root" if av_id == version.id else "",
                detail=record.data_type.rsplit(".", 1)[-1],
                href=f"/artifacts/{av_id}",
                highlight=av_id == version.id,
            )
        )
    for sr_id, step_run in step_runs.items():
        nodes.append(
            Node(
                id="s:" + sr_id,
                label=step_run.name,
                kind="step",
                status=step_run.status,
                detail=step_run.status,
                href=f"/runs/{step_run.run_id}?step={quote(step_run.name)}",
            )
        )
    edges = []
    for source, through, target in triples:
        edges += [("a:" + source, "s:" + through), ("s:" + through, "a:" + target)]
    if len(nodes) > LINEAGE_NODES:
        return LineageView(None, [(n.kind, n.href or "", n.label) for n in nodes])
    return LineageView(layout(nodes, edges))


def artifact_metadata(version: ArtifactVersion) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(the version's metadata without its visualization, the visualization)."""
    metadata = dict(version.metadata)
    shown = metadata.pop("visualization", None)
    return metadata, shown if isinstance(shown, dict) else None


# -- experiments: runs side by side -------------------------------------------------------------


@dataclass
class ComparisonView:
    runs: list[dict[str, Any]]
    parameters: list[tuple[str, list[Any], bool]]  # name, value per run, whether they differ
    metrics: list[tuple[str, list[Any], bool]]
    charts: list[Chart]


def compare(client: Client, refs: Sequence[str]) -> ComparisonView:
    found = client.comparison(list(dict.fromkeys(refs)))
    rows = found.rows

    def side_by_side(prefix: str, names: list[str]) -> list[tuple[str, list[Any], bool]]:
        out = []
        for name in names:
            values = [row.get(prefix + name) for row in rows]
            differ = len({json.dumps(v, sort_keys=True, default=str) for v in values}) > 1
            out.append((name, values, differ))
        return out

    run_ids = [row["id"] for row in rows]
    names_by_run = client.store.metric_names(run_ids)
    series_names = sorted({n for names in names_by_run.values() for n in names})
    charts = []
    for metric in series_names:
        series: dict[str, list[tuple[float, float]]] = {}
        for row in rows:
            if metric not in names_by_run.get(row["id"], []):
                continue
            points = client.store.metric_history(row["id"], metric)
            series[row["run"]] = [
                (float(p.step if p.step is not None else i), p.value) for i, p in enumerate(points)
            ]
        chart = line_chart(metric, series)
        if chart is not None:
            charts.append(chart)
    return ComparisonView(
        runs=[{"id": row["id"], "name": row["run"], "status": row["status"]} for row in rows],
        parameters=side_by_side("params.", found.parameters),
        metrics=side_by_side("metrics.", found.metrics),
        charts=charts,
    )


def final_metrics(client: Client, run_ids: Sequence[str]) -> dict[str, dict[str, float]]:
    from gristmill.comparison import final_metrics as finals

    metadata = client.store.get_metadata(Entity.RUN, list(run_ids))
    return {run_id: finals(entries) for run_id, entries in metadata.items()}


# -- models -------------------------------------------------------------------------------------

STAGES = ("staging", "production", "archived", "none")


def model_summary(client: Client) -> list[dict[str, Any]]:
    out = []
    for model in client.list_models():
        record = model._record
        versions = client.store.list_model_versions(model.name)
        stages = {v.stage: v for v in versions if v.stage in ("staging", "production")}
        out.append(
            {
                "name": model.name,
                "description": model.description,
                "versions": record.version_count,
                "latest": record.latest_version,
                "production": stages.get("production"),
                "staging": stages.get("staging"),
                "tags": model.tags,
            }
        )
    return out


def model_versions(client: Client, name: str) -> list[dict[str, Any]]:
    store = client.store
    out = []
    for record in store.list_model_versions(name):
        links = store.list_model_artifacts(record.id)
        out.append(
            {
                "record": record,
                "artifacts": [(link.kind, link.artifact_version) for link in links],
                "history": store.get_stage_history(record.id),
            }
        )
    return out


def get_run_or_none(client: Client, ref: str) -> Run | None:
    try:
        return client.get_run(ref)
    except NotFoundError:
        return None
