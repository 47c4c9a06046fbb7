"""The experiment tracker flavor base: a step that names a tracker runs inside one of the
tracker's runs, and what it logs through gristmill is mirrored there. A flavor implements four
small methods; this module does the rest (parameters, splitting metadata into metrics and
params, error wrapping, warnings). It must not import any tracker's package.

    ExperimentTracker.start_step(step)      → StepTracking (held by the step's context)
        _start_step(step=...)               → TrackerRun (its id, URL, link metadata)
        _log_params(run, params=...)        the step's and the pipeline's parameters
        _log_metrics(run, metrics=..., step=...)
        _end_step(run, status=...)
    RegistersModels (capability mixin)
        _register_model(run, name=..., value=..., output=...) → metadata, or None
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gristmill._plugins import Flavor
from gristmill.errors import ExperimentTrackerError

__all__ = [
    "ExperimentTracker",
    "RegistersModels",
    "StepTracking",
    "TrackedStep",
    "TrackerRun",
    "flat_params",
]

logger = logging.getLogger("gristmill")

# Key prefix of the run's pipeline parameters among a tracker run's params (a step's own
# parameters keep their names).
PIPELINE_PREFIX = "pipeline."


@dataclass(frozen=True)
class TrackedStep:
    """The gristmill step run a tracker run mirrors, and what links the two."""

    component: str  # the tracker component's name in the stack
    run_id: str
    run_name: str
    pipeline_name: str
    experiment: str  # the gristmill experiment (the pipeline's name unless chosen)
    step_name: str
    step_run_id: str
    parameters: Mapping[str, Any] = field(default_factory=dict)
    pipeline_parameters: Mapping[str, Any] = field(default_factory=dict)

    def link_tags(self) -> dict[str, str]:
        """What a tracker run records to find its way back to gristmill."""
        return {
            "gristmill.run_id": self.run_id,
            "gristmill.run_name": self.run_name,
            "gristmill.pipeline": self.pipeline_name,
            "gristmill.step": self.step_name,
            "gristmill.step_run_id": self.step_run_id,
        }


@dataclass
class TrackerRun:
    """A tracker's run for one step run: its id, a URL to open it (None when there is no
    server), the metadata recorded on the gristmill step run to link back, and the flavor's
    own state (``handle``)."""

    id: str
    url: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    handle: Any = None


def flat_params(step: TrackedStep) -> dict[str, Any]:
    """The params of a step's tracker run: its own parameters, and the run's pipeline
    parameters as ``pipeline.NAME``."""
    params = dict(step.parameters)
    params.update({PIPELINE_PREFIX + k: v for k, v in step.pipeline_parameters.items()})
    return params


class ExperimentTracker(Flavor, ABC):
    """Base of the ``experiment_tracker`` flavors (template method: ``start_step`` and the
    ``StepTracking`` it returns call the four abstract methods; keyword-only arguments)."""

    @abstractmethod
    def _start_step(self, *, step: TrackedStep) -> TrackerRun:
        """Start (and make active, for the library's own logging calls in the step) a run."""

    @abstractmethod
    def _log_params(self, run: TrackerRun, *, params: Mapping[str, Any]) -> None: ...

    @abstractmethod
    def _log_metrics(
        self, run: TrackerRun, *, metrics: Mapping[str, float], step: int | None
    ) -> None:
        """``step`` None: single values (``log_metadata``), not a point of a series."""

    @abstractmethod
    def _end_step(self, run: TrackerRun, *, status: str) -> None:
        """``status`` is the step run's: completed, failed or stopped."""

    def start_step(self, step: TrackedStep) -> StepTracking:
        """Start the tracker run of a step run and log its parameters. A tracker that cannot
        start fails the step (ExperimentTrackerError): the user asked for it."""
        try:
            run = self._start_step(step=step)
        except Exception as exc:
            raise ExperimentTrackerError(
                f"step '{step.step_name}': experiment tracker '{step.component}' "
                f"({self.flavor}) could not start a run: {type(exc).__name__}: {exc}"
            ) from exc
        tracking = StepTracking(self, run, step)
        tracking.log_params(flat_params(step))
        return tracking


class RegistersModels(ABC):
    """Capability: the tracker keeps a model registry of its own."""

    register_models: bool = False

    @abstractmethod
    def _register_model(
        self, run: TrackerRun, *, name: str, value: Any, output: str
    ) -> dict[str, Any] | None:
        """Register ``value`` (a step's output marked ``is_model_artifact``) as a version of
        model ``name``; returns the metadata that links it (recorded on the gristmill model
        version and step run), or None when this kind of value is not covered."""


class StepTracking:
    """The tracker run of one running step. Mirroring never fails the step: the gristmill
    store is the record; a failure is logged once as a warning (and again at the end)."""

    def __init__(self, tracker: ExperimentTracker, run: TrackerRun, step: TrackedStep) -> None:
        self.tracker = tracker
        self.run = run
        self.step = step
        self.failures = 0

    def _mirror(self, what: str, call: Any, /, **kwargs: Any) -> None:
        try:
            call(self.run, **kwargs)
        except Exception as exc:
            self.failures += 1
            if self.failures == 1:
                logger.warning(
                    "step '%s': experiment tracker '%s' could not log %s (%s: %s); gristmill "
                    "keeps recording, the tracker run %s will miss them",
                    self.step.step_name,
                    self.step.component,
                    what,
                    type(exc).__name__,
                    exc,
                    self.run.id,
                )

    def log_params(self, params: Mapping[str, Any]) -> None:
        if params:
            self._mirror("params", self.tracker._log_params, params=params)

    def log_metrics(self, metrics: Mapping[str, float], *, step: int | None) -> None:
        if metrics:
            self._mirror("metrics", self.tracker._log_metrics, metrics=metrics, step=step)

    def log_metadata(self, values: Mapping[str, Any]) -> None:
        """Step-run metadata: numbers are single metric values, the rest params."""
        numbers = {
            k: float(v)
            for k, v in values.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)
        }
        self.log_metrics(numbers, step=None)
        self.log_params({k: v for k, v in values.items() if k not in numbers})

    def register_model(self, *, name: str, value: Any, output: str) -> dict[str, Any] | None:
        """Register a model output in the tracker's registry, when it has one and its
        ``register_models`` setting is on; the link metadata, or None."""
        tracker = self.tracker
        if not (isinstance(tracker, RegistersModels) and tracker.register_models):
            return None
        try:
            return tracker._register_model(self.run, name=name, value=value, output=output)
        except Exception as exc:
            raise ExperimentTrackerError(
                f"step '{self.step.step_name}': experiment tracker '{self.step.component}' "
                f"could not register output '{output}' as model '{name}': "
                f"{type(exc).__name__}: {exc}"
            ) from exc

    def end(self, *, status: str) -> None:
        try:
            self.tracker._end_step(self.run, status=status)
        except Exception as exc:
            logger.warning(
                "step '%s': experiment tracker '%s' could not end run %s: %s: %s",
                self.step.step_name,
                self.step.component,
                self.run.id,
                type(exc).__name__,
                exc,
            )
        if self.failures:
            logger.warning(
                "step '%s': %d logging call(s) to experiment tracker '%s' failed",
                self.step.step_name,
                self.failures,
                self.step.component,
            )
