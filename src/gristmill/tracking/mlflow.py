"""The MLflow experiment tracker (``experiment_tracker/mlflow``): a tracked step runs inside an
active MLflow run (autologging on unless turned off); gristmill's metrics and params are
mirrored to it through ``MlflowClient``; model outputs can be registered in MLflow's registry.
mlflow is imported when a step starts, never when the flavor is only validated."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from gristmill.tracking.base import ExperimentTracker, RegistersModels, TrackedStep, TrackerRun

# MLflow's limit on a param value (6,000 characters since 2.x); longer values are cut.
MAX_PARAM_CHARS = 6000
_STATUS = {"completed": "FINISHED", "failed": "FAILED", "stopped": "KILLED"}
# mlflow.autolog and set_tracking_uri change process-wide state: changed under one lock.
_lock = threading.Lock()
_autolog_state: list[bool] = []


def as_tracking_uri(value: str | None) -> str | None:
    """A folder becomes a ``file://`` URI; URIs (``sqlite:///``, ``http://``) stay as given."""
    if value is None or "://" in value or value.startswith(("sqlite:", "databricks")):
        return value
    return Path(value).expanduser().resolve().as_uri()


class MLflowExperimentTracker(ExperimentTracker, RegistersModels):
    flavor: ClassVar[str] = "mlflow"
    config_model: ClassVar[str | None] = "gristmill.tracking.configs:MLflowTrackerConfig"
    requires: ClassVar[tuple[str, ...]] = ("mlflow",)
    extra: ClassVar[str | None] = "mlflow"

    def __init__(
        self,
        *,
        tracking_uri: str | None = None,
        experiment: str | None = None,
        autolog: bool = True,
        nested: bool = False,
        register_models: bool = False,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        self.tracking_uri = as_tracking_uri(tracking_uri)
        self.experiment = experiment
        self.autolog = autolog
        self.nested = nested
        self.register_models = register_models
        self.tags = dict(tags or {})
        self._experiments: dict[str, str] = {}
        self._parents: dict[str, str] = {}

    def _client(self) -> Any:
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.tracking_uri)

    def _experiment_id(self, client: Any, name: str) -> str:
        found = self._experiments.get(name)
        if found is None:
            experiment = client.get_experiment_by_name(name)
            if experiment is None:
                try:
                    found = client.create_experiment(name)
                except Exception:  # created meanwhile by another process
                    experiment = client.get_experiment_by_name(name)
                    if experiment is None:
                        raise
                    found = experiment.experiment_id
            else:
                found = experiment.experiment_id
            self._experiments[name] = found
        return found

    def _parent_run(self, client: Any, experiment_id: str, step: TrackedStep) -> str:
        """One MLflow run per gristmill run, the parent of its steps' runs (found by tag, so
        steps in other processes of the same run share it)."""
        found = self._parents.get(step.run_id)
        if found is not None:
            return found
        existing = client.search_runs(
            [experiment_id],
            filter_string=f"tags.`gristmill.run_id` = '{step.run_id}' "
            "and tags.`gristmill.role` = 'pipeline'",
            max_results=1,
        )
        if existing:
            found = existing[0].info.run_id
        else:
            tags = {
                **self.tags,
                "gristmill.run_id": step.run_id,
                "gristmill.run_name": step.run_name,
                "gristmill.pipeline": step.pipeline_name,
                "gristmill.role": "pipeline",
            }
            found = client.create_run(experiment_id, tags=tags, run_name=step.run_name).info.run_id
        self._parents[step.run_id] = str(found)
        return str(found)

    def _start_step(self, *, step: TrackedStep) -> TrackerRun:
        import mlflow

        with _lock:
            if self.tracking_uri is not None:
                mlflow.set_tracking_uri(self.tracking_uri)
            if _autolog_state != [self.autolog]:
                mlflow.autolog(disable=not self.autolog, silent=True)
                _autolog_state[:] = [self.autolog]
            client = self._client()
            experiment_id = self._experiment_id(client, self.experiment or step.experiment)
            tags = {**self.tags, **step.link_tags()}
            if self.nested:
                tags["mlflow.parentRunId"] = self._parent_run(client, experiment_id, step)
        active = mlflow.start_run(
            experiment_id=experiment_id, run_name=f"{step.run_name}.{step.step_name}", tags=tags
        )
        run_id = active.info.run_id
        uri = mlflow.get_tracking_uri()
        url = (
            f"{uri.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"
            if uri.startswith(("http://", "https://"))
            else None
        )
        metadata: dict[str, Any] = {
            "mlflow_run_id": run_id,
            "mlflow_experiment_id": experiment_id,
            "mlflow_tracking_uri": uri,
        }
        if url:
            metadata["mlflow_run_url"] = url
        if self.nested:
            metadata["mlflow_parent_run_id"] = tags["mlflow.parentRunId"]
        return TrackerRun(id=run_id, url=url, metadata=metadata, handle=client)

    def _log_params(self, run: TrackerRun, *, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        run.handle.log_batch(
            run.id, params=[Param(k, str(v)[:MAX_PARAM_CHARS]) for k, v in params.items()]
        )

    def _log_metrics(
        self, run: TrackerRun, *, metrics: Mapping[str, float], step: int | None
    ) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        run.handle.log_batch(
            run.id, metrics=[Metric(k, v, now, step or 0) for k, v in metrics.items()]
        )

    def _end_step(self, run: TrackerRun, *, status: str) -> None:
        import mlflow

        final = _STATUS.get(status, "FINISHED")
        active = mlflow.active_run()
        if active is not None and active.info.run_id == run.id:
            mlflow.end_run(final)
        else:  # the step's code ended it, or started one of its own on top
            run.handle.set_terminated(run.id, final)
        parent = run.metadata.get("mlflow_parent_run_id")
        if parent:
            # The parent ends with its last step (re-terminating moves its end time on).
            run.handle.set_terminated(parent, "FINISHED")

    def _register_model(
        self, run: TrackerRun, *, name: str, value: Any, output: str
    ) -> dict[str, Any] | None:
        base = sys.modules.get("sklearn.base")
        if base is None or not isinstance(value, base.BaseEstimator):
            return None  # only scikit-learn estimators are covered (docs/tracking.md)
        import mlflow
        import mlflow.sklearn
        import sklearn

        arguments: dict[str, Any] = {
            "registered_model_name": name,
            # Given, so MLflow does not infer requirements in a subprocess (seconds).
            "pip_requirements": [f"scikit-learn=={sklearn.__version__}"],
        }
        if int(mlflow.__version__.split(".")[0]) >= 3:
            arguments["name"] = output
        else:
            arguments["artifact_path"] = output
        active = mlflow.active_run()
        if active is None or active.info.run_id != run.id:
            with mlflow.start_run(run_id=run.id):
                info = mlflow.sklearn.log_model(value, **arguments)
        else:
            info = mlflow.sklearn.log_model(value, **arguments)
        return {
            "mlflow_registered_model": name,
            "mlflow_model_version": int(info.registered_model_version),
            "mlflow_model_uri": info.model_uri,
        }
