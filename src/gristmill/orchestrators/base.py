"""The orchestrator extension point. ``run`` (here) records the run, handles interruption and
sets the final status; a flavor implements only ``_run``: decide where and when each step
runs, and for each call ``run.launch(step_id)`` (or, remotely, the launcher entry point).
An orchestrator never executes step logic itself."""

from __future__ import annotations

import abc
import logging
from typing import Any, ClassVar

from gristmill._plugins import Flavor
from gristmill.execution import RunContext

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
        """Execute a run to the end and return its final status."""
        if not self.uses_resources and self.flavor not in _ignored_resources:
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
        run.start()
        try:
            self._run(run)
        except KeyboardInterrupt:
            run.finish(interrupted=True)
            # One plain KeyboardInterrupt that says where the step's code was: the frames of
            # gristmill between the step and here are noise for a Ctrl-C. A program (or a
            # notebook) that catches KeyboardInterrupt still catches it; uncaught, Python
            # prints it and exits as interrupted (130 in a shell).
            raise KeyboardInterrupt(
                f"{run.interruption()}; run {run.plan.run_name} stopped"
            ) from None
        except BaseException as exc:
            run.finish(error=f"orchestrator {self.flavor} failed: {type(exc).__name__}: {exc}")
            raise
        return run.finish()

    @abc.abstractmethod
    def _run(self, run: RunContext) -> None:
        """Launch every step of ``run.plan`` once its upstream steps succeeded; skip (with
        ``run.skip``) those whose upstream did not."""
