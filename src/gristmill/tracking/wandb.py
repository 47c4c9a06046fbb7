"""The Weights & Biases experiment tracker (``experiment_tracker/wandb``): a tracked step runs
inside a W&B run (``wandb.init``, one per step run, grouped by the gristmill run); gristmill's
metrics and params are mirrored to it. wandb is imported when a step starts. Never logs in:
credentials come from W&B's own environment, or ``api_key`` as a secret reference."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from gristmill.tracking.base import ExperimentTracker, TrackedStep, TrackerRun

# The history key that carries gristmill's step number of each logged point: W&B's own step
# only moves forward across all metrics, while each gristmill series counts from 0.
STEP_KEY = "gristmill_step"


class WandbExperimentTracker(ExperimentTracker):
    flavor: ClassVar[str] = "wandb"
    config_model: ClassVar[str | None] = "gristmill.tracking.configs:WandbTrackerConfig"
    requires: ClassVar[tuple[str, ...]] = ("wandb",)
    extra: ClassVar[str | None] = "wandb"
    secret_fields: ClassVar[tuple[str, ...]] = ("api_key",)

    def __init__(
        self,
        *,
        project: str | None = None,
        entity: str | None = None,
        mode: str | None = None,
        directory: str | None = None,
        tags: list[str] | None = None,
        api_key: str | None = None,
    ) -> None:
        self.project = project
        self.entity = entity
        self.mode = mode
        self.directory = directory
        self.tags = list(tags or [])
        self.api_key = api_key

    def _start_step(self, *, step: TrackedStep) -> TrackerRun:
        import wandb

        settings: dict[str, Any] = {"silent": True}
        if self.api_key:
            settings["api_key"] = self.api_key
        link = {
            "run_id": step.run_id,
            "run_name": step.run_name,
            "pipeline": step.pipeline_name,
            "step": step.step_name,
            "step_run_id": step.step_run_id,
        }
        run = wandb.init(
            project=self.project or step.experiment,
            entity=self.entity,
            mode=self.mode,  # type: ignore[arg-type]
            dir=self.directory,
            name=f"{step.run_name}.{step.step_name}",
            group=step.run_name,
            job_type=step.step_name,
            tags=self.tags or None,
            config={"gristmill": link},
            reinit="create_new",  # parallel steps each get their own run
            settings=wandb.Settings(**settings),
        )
        run.define_metric(STEP_KEY)
        run.define_metric("*", step_metric=STEP_KEY)
        metadata: dict[str, Any] = {"wandb_run_id": run.id, "wandb_project": run.project}
        url = run.url
        if url:
            metadata["wandb_run_url"] = url
        sync_dir = getattr(run.settings, "sync_dir", None)
        if sync_dir:
            metadata["wandb_run_dir"] = str(sync_dir)
        return TrackerRun(id=run.id, url=url, metadata=metadata, handle=run)

    def _log_params(self, run: TrackerRun, *, params: Mapping[str, Any]) -> None:
        run.handle.config.update(dict(params), allow_val_change=True)

    def _log_metrics(
        self, run: TrackerRun, *, metrics: Mapping[str, float], step: int | None
    ) -> None:
        if step is None:
            run.handle.summary.update(dict(metrics))
        else:
            run.handle.log({**metrics, STEP_KEY: step})

    def _end_step(self, run: TrackerRun, *, status: str) -> None:
        run.handle.finish(exit_code=0 if status == "completed" else 1)
