"""In-process, one step after another, in topological order."""

from __future__ import annotations

from gristmill.execution import RunContext
from gristmill.orchestrators.base import Orchestrator


class LocalOrchestrator(Orchestrator):
    flavor = "local"
    config_model = None  # takes no settings

    def _run(self, run: RunContext) -> None:
        for step_id in run.plan.order:
            blocker = run.blocked_by(step_id)
            if blocker is not None:
                run.skip([step_id], f"upstream step '{blocker}' did not succeed")
                continue
            run.launch(step_id)
