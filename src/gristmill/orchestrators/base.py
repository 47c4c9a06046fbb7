"""The orchestrator extension point, for both kinds of orchestrators.

- **Blocking** (local, local_parallel, Dask, Ray): ``run`` (here) records the run, handles
  interruption (Ctrl-C, or a stop request read by a ``StopWatch``) and sets the final status;
  a flavor implements only ``_run``: decide where and when each step runs, and for each call
  ``run.launch(step_id)`` (or, remotely, the launcher entry point).
- **Submitting** (Airflow, Kubeflow, Argo; Dask with ``wait: false``): ``run`` records the run
  ``submitted`` and hands it to the engine; a flavor mixes in ``Submitting`` and implements
  only ``_submit`` (``SubmittingOrchestrator`` is the base for those that only submit), and
  ``Stoppable._stop`` where the engine can stop a run. The engine's workers run each step
  through ``python -m gristmill.execution`` and finish the run; ``gristmill runs wait``
  follows it from the store, ``gristmill runs stop`` stops it.

An orchestrator never executes step logic itself."""

from __future__ import annotations

import abc
import gc
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from gristmill._plugins import Flavor
from gristmill.execution import RunContext
from gristmill.execution.stops import StopWatch
from gristmill.store import Status

if TYPE_CHECKING:
    from gristmill.store import RunRecord

logger = logging.getLogger("gristmill")
# Flavors that already said they ignore step resources (once per process each).
_ignored_resources: set[str] = set()


class Orchestrator(Flavor, abc.ABC):
    flavor: ClassVar[str]
    # True when the flavor places steps by their ``resources`` (Dask, Ray); the others run
    # steps where they are and say once that resources are ignored.
    uses_resources: ClassVar[bool] = False

    def __init__(self, **config: Any) -> None:
        if config:
            from gristmill.errors import ConfigError

            raise ConfigError(
                f"orchestrator flavor '{self.flavor}' takes no setting(s) {sorted(config)}"
            )

    def run(self, run: RunContext) -> str:
        """Execute a run to the end and return its final status; a submitting orchestrator
        returns ``submitted`` once the engine has the run (or, told to wait, its final
        status)."""
        # What the process held before the run (its imported modules: SQLAlchemy's alone are
        # tens of thousands of objects) is left out of the garbage collector's full passes
        # while the run lasts: one such pass cost ~20 ms in the middle of a 10-step run. The
        # objects rejoin the oldest generation when the run ends, so nothing is kept that
        # the collector would have freed, only freed after the run.
        gc.freeze()
        try:
            return self._run_recorded(run)
        finally:
            gc.unfreeze()

    def _run_recorded(self, run: RunContext) -> str:
        self._warn_ignored_resources(run)
        if isinstance(self, Submitting) and self.submits:
            return self._hand_over(run)
        run.start()
        watch = StopWatch(run.store, run.plan.run_id).start(run.monitor)
        try:
            try:
                self._run(run)
            finally:
                fired = watch.disarm()
        except KeyboardInterrupt:
            run.finish(interrupted=True)
            # One plain KeyboardInterrupt that says where the step's code was: the frames of
            # gristmill between the step and here are noise for a Ctrl-C. A program (or a
            # notebook) that catches KeyboardInterrupt still catches it; uncaught, Python
            # prints it and exits as interrupted (130 in a shell). A stop request
            # (`gristmill runs stop`) ends the run the same way.
            by = "a stop request (gristmill runs stop): " if watch.fired else ""
            raise KeyboardInterrupt(
                f"{by}{run.interruption()}; run {run.plan.run_name} stopped"
            ) from None
        except BaseException as exc:
            run.finish(error=f"orchestrator {self.flavor} failed: {type(exc).__name__}: {exc}")
            raise
        if fired:  # the request came as the last step ended: the run is complete as it is
            watch.absorb()
        return run.finish()

    @abc.abstractmethod
    def _run(self, run: RunContext) -> None:
        """Launch every step of ``run.plan`` once its upstream steps succeeded; skip (with
        ``run.skip``) those whose upstream did not."""

    def stop(self, run: RunRecord, *, steps: Sequence[str] = ()) -> bool:
        """Stop a run this orchestrator handed to its engine (``steps``: its step ids), where
        the engine can (``Stoppable``): True when the engine was told, False when it cannot
        be (the run's workers then stop at their next check of the store). Errors of the
        engine are the caller's to report."""
        if not isinstance(self, Stoppable):
            return False
        self._stop(run, steps=steps)
        return True

    def _hand_over(self, run: RunContext) -> str:
        assert isinstance(self, Submitting)
        run.start(detached=True)  # `submitted`: no process of ours runs it from here on
        try:
            self._submit(run)
        except BaseException as exc:
            interrupted = isinstance(exc, KeyboardInterrupt)
            run.finish(
                interrupted=interrupted,
                error=None
                if interrupted
                else f"orchestrator {self.flavor} could not submit the run: "
                f"{type(exc).__name__}: {exc}",
            )
            raise
        if not self.wait:
            return Status.SUBMITTED
        return self._follow(run)

    def _follow(self, run: RunContext) -> str:
        """Follow a handed-over run from the store until it ends; Ctrl-C stops it (on the
        engine where it can, and in the store) and raises KeyboardInterrupt."""
        from gristmill.client import stop_run, wait_for_run

        try:
            return wait_for_run(run.store, run.plan.run_id).status
        except KeyboardInterrupt:
            stop_run(run.store, run.plan.run_id, engine=self.stop)
            raise KeyboardInterrupt(f"run {run.plan.run_name} stopped") from None

    def _warn_ignored_resources(self, run: RunContext) -> None:
        if self.uses_resources or self.flavor in _ignored_resources:
            return
        asking = [s for s, p in run.plan.steps.items() if p.options.resources is not None]
        if asking:
            _ignored_resources.add(self.flavor)
            logger.warning(
                "orchestrator '%s' runs steps on this machine as they come and ignores "
                "their resources (asked by step%s %s); Dask and Ray place steps by them",
                self.flavor,
                "s" if len(asking) > 1 else "",
                ", ".join(f"'{s}'" for s in asking),
            )


class Submitting(abc.ABC):
    """Capability: the orchestrator hands runs to an engine and returns. ``run`` records the
    run ``submitted`` (no pid: it lives by its steps' heartbeats), calls ``_submit`` and
    returns ``submitted``; with ``wait`` it then follows the run from the store."""

    flavor: ClassVar[str]
    # Follow the run from the store after handing it over (until it ends).
    wait: bool = False

    @property
    def submits(self) -> bool:
        """Whether ``run`` hands this run over (a flavor of both kinds decides per setting)."""
        return True

    @abc.abstractmethod
    def _submit(self, run: RunContext) -> None:
        """Give the engine every step of ``run.plan`` and return at once. On the engine, each
        step runs ``python -m gristmill.execution step --run ID STEP`` (or the task
        ``gristmill.orchestrators.tasks.run_submitted_step``) once its upstream steps ended,
        and ``python -m gristmill.execution finish --run ID`` (or ``finish_submitted_run``)
        runs after them all. Raise to refuse: the run is then recorded failed."""


class Stoppable(abc.ABC):
    """Capability: the engine can stop a run it was handed (``gristmill runs stop``)."""

    @abc.abstractmethod
    def _stop(self, run: RunRecord, *, steps: Sequence[str] = ()) -> None:
        """Tell the engine to drop what it has not run of ``run`` (whose step ids are
        ``steps``) and, where it can, to stop what runs. The run is already ``stopping`` in
        the store (its workers stop at their next check), and whoever called this records
        its end."""


class SubmittingOrchestrator(Submitting, Orchestrator):
    """The base of orchestrators that only submit (Airflow, Kubeflow, Argo): implement
    ``_submit`` (and mix in ``Stoppable`` where the engine can stop a run). Their settings
    take ``wait`` (default false): true follows the run until it ends, as a blocking
    orchestrator would (their ``config_model`` extends
    ``gristmill.orchestrators.configs:SubmittingOrchestratorConfig``)."""

    config_model: ClassVar[str | None] = (
        "gristmill.orchestrators.configs:SubmittingOrchestratorConfig"
    )

    def __init__(self, *, wait: bool = False, **config: Any) -> None:
        super().__init__(**config)
        self.wait = wait

    def _run(self, run: RunContext) -> None:  # pragma: no cover - ``run`` hands over instead
        raise AssertionError(f"orchestrator '{self.flavor}' submits runs; it never runs one")
