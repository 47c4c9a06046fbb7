"""Step operators: run one step of a run somewhere else (another interpreter, a Spark
session, a Kubernetes Job, a cloud training job) while the orchestrator runs the rest."""

from gristmill.step_operators.base import InProcessStepOperator, JobStatus, StepJob, StepOperator

__all__ = ["InProcessStepOperator", "JobStatus", "StepJob", "StepOperator"]
