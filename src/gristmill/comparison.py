"""Runs side by side (``Client.compare_runs``, ``gristmill runs compare``) and metric series as
rows: one row per run with its name, status, duration, parameters (``params.NAME``) and final
metrics (``metrics.NAME``), sorted by any of them. Builds plain rows from what the store
returns; turning them into a pandas DataFrame is left to ``as_frame``. Reads only."""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from gristmill.errors import NotFoundError, did_you_mean
from gristmill.store import Entity, MetadataRecord

if TYPE_CHECKING:
    from gristmill.client import Run
    from gristmill.store import MetadataStore

PARAM = "params."
METRIC = "metrics."
# The columns every comparison starts with, before parameters and metrics.
FIXED = ("run", "id", "experiment", "status", "duration", "tags")


@dataclass
class Comparison:
    """Rows of runs side by side; ``columns`` in order: FIXED, then ``params.*``, then
    ``metrics.*``."""

    columns: list[str]
    rows: list[dict[str, Any]]

    @property
    def parameters(self) -> list[str]:
        return [c[len(PARAM) :] for c in self.columns if c.startswith(PARAM)]

    @property
    def metrics(self) -> list[str]:
        return [c[len(METRIC) :] for c in self.columns if c.startswith(METRIC)]


def final_metrics(entries: Sequence[MetadataRecord]) -> dict[str, float]:
    """The numbers among a run's metadata, the latest value of each key: the last value of
    every series ``log_metric`` wrote and every number ``log_metadata`` logged."""
    found: dict[str, float] = {}
    for entry in entries:
        value = entry.value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            found[entry.key] = value
        else:
            found.pop(entry.key, None)
    return found


def compare(
    store: MetadataStore,
    runs: Sequence[Run],
    *,
    metrics: Sequence[str] | None = None,
    sort: str | None = None,
) -> Comparison:
    """One row per run (in the order given, unless ``sort``): see the module docstring.
    ``metrics`` keeps only those metrics (in that order; NotFoundError for one no run has);
    ``sort`` is a metric, parameter or column name, ``-`` first for descending; runs without
    that value come last either way."""
    ids = [r.id for r in runs]
    metadata = store.get_metadata(Entity.RUN, ids)
    finals = {run_id: final_metrics(entries) for run_id, entries in metadata.items()}
    every_metric = list(dict.fromkeys(k for run_id in ids for k in finals[run_id]))
    if metrics is None:
        shown = every_metric
    else:
        shown = list(dict.fromkeys(metrics))
        for name in shown:
            if name not in every_metric:
                raise NotFoundError(
                    f"no run compared has a metric '{name}'{did_you_mean(name, every_metric)}"
                    + ("" if every_metric else " (they logged no numbers)")
                )
    parameters = list(dict.fromkeys(k for r in runs for k in r.parameters))
    if sort:  # a metric to sort by is shown, even when ``metrics`` leaves it out
        key = sort.lstrip("-+").removeprefix(METRIC)
        if key in every_metric and key not in shown and key not in parameters:
            shown.append(key)
    rows = []
    for r in runs:
        row: dict[str, Any] = {
            "run": r.name,
            "id": r.id,
            "experiment": r.experiment,
            "status": r.status,
            "duration": r.duration,
            "tags": list(r.tags),
        }
        params = r.parameters
        for name in parameters:
            row[PARAM + name] = params.get(name)
        for name in shown:
            row[METRIC + name] = finals[r.id].get(name)
        rows.append(row)
    columns = [*FIXED, *(PARAM + p for p in parameters), *(METRIC + m for m in shown)]
    if sort:
        rows = sort_rows(rows, sort, columns)
    return Comparison(columns, rows)


def sort_rows(
    rows: list[dict[str, Any]], sort: str, columns: Sequence[str]
) -> list[dict[str, Any]]:
    """``rows`` by ``sort`` (a column, or a metric or parameter by its own name; a leading
    ``-`` for descending); rows without a value last."""
    descending = sort.startswith("-")
    key = sort.lstrip("-+")
    column = next(
        (c for c in (key, METRIC + key, PARAM + key) if c in columns),
        None,
    )
    if column is None:
        names = [c.split(".", 1)[-1] for c in columns]
        raise NotFoundError(
            f"cannot sort by '{key}': no metric, parameter or column has that name"
            f"{did_you_mean(key, names)}"
        )
    present = [r for r in rows if r.get(column) is not None]
    missing = [r for r in rows if r.get(column) is None]
    try:
        present.sort(key=lambda r: r[column], reverse=descending)
    except TypeError:  # mixed kinds of values: compare them as text
        present.sort(key=lambda r: str(r[column]), reverse=descending)
    return present + missing


def history_rows(points: Sequence[Any]) -> list[dict[str, Any]]:
    """Metric points as rows: step, value, time (UTC)."""
    return [
        {"step": p.step, "value": p.value, "time": datetime.fromtimestamp(p.at, timezone.utc)}
        for p in points
    ]


def as_frame(rows: list[dict[str, Any]], columns: Sequence[str]) -> Any:
    """A pandas DataFrame of ``rows`` when pandas is installed, else the rows themselves."""
    if importlib.util.find_spec("pandas") is None:
        return rows
    import pandas as pd

    return pd.DataFrame(rows, columns=list(columns))
