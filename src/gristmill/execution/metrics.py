"""``log_metric`` / ``log_metrics``: metric series (a value per step: loss per epoch, accuracy
per evaluation). Inside a step, points are kept in the step's context and written with its
outcome, in the same transaction, whether it completes or fails; outside a step they go to
the named run at once. Checking a point costs microseconds: a training loop may call this
on every batch."""

from __future__ import annotations

import operator
import time
from collections.abc import Mapping
from typing import Any

from gristmill.errors import InvalidMetadataError
from gristmill.execution.context import current_context
from gristmill.store import MetricPoint


def log_metric(name: str, value: float, *, step: int | None = None, run: str | None = None) -> None:
    """Record ``value`` of metric ``name`` at ``step`` (default: the next step of that name,
    from 0), with the time it was logged.

    Inside a step: on this step run and its run, written with the step's outcome (a failing
    step keeps the points it logged). Outside a step, name the run: ``run=`` (id, id prefix or
    name). The last value of each metric also shows as the run's and step run's metadata;
    the whole series is ``run.metric_history(name)``."""
    log_metrics({name: value}, step=step, run=run)


def log_metrics(
    values: Mapping[str, float], *, step: int | None = None, run: str | None = None
) -> None:
    """Record several metrics at one ``step``: ``log_metrics({"loss": l, "acc": a}, step=i)``.
    See ``log_metric``."""
    at = time.time()
    number = _step_number(step)
    context = current_context()
    if context is not None and run is None:
        following = context.metric_steps
        add = context.pending_metrics.append
        for name, value in values.items():
            checked = _value(name, value)
            point_step = following.get(name, 0) if number is None else number
            following[name] = max(following.get(name, 0), point_step + 1)
            add(MetricPoint(context.run_id, name, point_step, checked, at, context.step_run_id))
            if context.tracker is not None:  # mirrored with the same step number
                context.tracker.log_metrics({name: checked}, step=point_step)
        return
    if run is None:
        raise InvalidMetadataError(
            "log_metric() outside a step needs the run it belongs to: run=RUN (id or name)"
        )
    points = [
        MetricPoint("", name, number, _value(name, value), at) for name, value in values.items()
    ]
    if not points:
        return
    from gristmill.project import find_project

    store = find_project().store()
    run_id = store.get_run(run).id
    for point in points:
        point.run_id = run_id
    store.add_metric_points(points)


def _value(name: Any, value: Any) -> float:
    if not isinstance(name, str) or not name or len(name) > 255:
        raise InvalidMetadataError(
            f"metric names are non-empty strings of at most 255 characters, got {name!r}"
        )
    if isinstance(value, float):
        return value
    if isinstance(value, (str, bytes, bool)) or value is None:
        raise InvalidMetadataError(
            f"metric '{name}' = {value!r} is not a number; log ints or floats (numpy scalars too)"
        )
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        raise InvalidMetadataError(
            f"metric '{name}' = {type(value).__name__} is not a number; log ints or floats "
            "(numpy scalars and one-element tensors too)"
        ) from None


def _step_number(step: Any) -> int | None:
    if step is None:
        return None
    if isinstance(step, bool):
        raise InvalidMetadataError(f"a metric's step is a whole number, not {step!r}")
    try:
        number = operator.index(step)
    except TypeError:
        if not (isinstance(step, float) and step.is_integer()):
            raise InvalidMetadataError(f"a metric's step is a whole number, not {step!r}") from None
        number = int(step)
    if not -_STEP_LIMIT <= number < _STEP_LIMIT:
        raise InvalidMetadataError(f"a metric's step is between ±2**31, not {step!r}")
    return number


# Steps are 32-bit integers in every database.
_STEP_LIMIT = 2**31
