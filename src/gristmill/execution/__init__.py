"""Execution: compiling a run, launching one step, caching, step context, logs, retries.

``python -m gristmill.execution --run RUN --step STEP`` runs one step of a recorded run; remote
orchestrators use it, so every orchestrator goes through the same launcher.
"""

from gristmill.execution.context import (
    InputArtifact,
    StepContext,
    get_step_context,
    log_metadata,
)
from gristmill.execution.launcher import StepOutcome, launch_step
from gristmill.execution.plan import RunPlan, StepPlan, compile_run
from gristmill.execution.run import RunContext, RunListener

__all__ = [
    "InputArtifact",
    "RunContext",
    "RunListener",
    "RunPlan",
    "StepContext",
    "StepOutcome",
    "StepPlan",
    "compile_run",
    "get_step_context",
    "launch_step",
    "log_metadata",
]
