"""gristmill: typed Python (or YAML) ML pipelines, run locally in milliseconds and unchanged on
remote orchestrators, with every run, step, artifact and metric tracked.

The public API, nothing else. Names load on first use, so ``import gristmill`` stays cheap:
this module imports nothing at all at run time (not even ``typing``, which alone costs more
than the rest of a bare ``import gristmill``).
"""

from gristmill._version import __version__

TYPE_CHECKING = False

__all__ = [
    "ArtifactConfig",
    "ArtifactVersion",
    "Client",
    "DVCPath",
    "ExternalArtifact",
    "GristmillError",
    "Model",
    "ModelStages",
    "ModelVersion",
    "Pipeline",
    "Resources",
    "Retry",
    "Run",
    "RunConfig",
    "RunFailedError",
    "Step",
    "StepConfig",
    "StepContext",
    "StepOptions",
    "StepRun",
    "__version__",
    "get_step_context",
    "load_pipeline",
    "log_metadata",
    "log_metric",
    "log_metrics",
    "pipeline",
    "step",
]

_LOCATIONS = {
    "ArtifactConfig": "gristmill.models.definition",
    "ArtifactVersion": "gristmill.client",
    "Client": "gristmill.client",
    "DVCPath": "gristmill.spec",
    "ExternalArtifact": "gristmill.spec",
    "GristmillError": "gristmill.errors",
    "Model": "gristmill.models.definition",
    "ModelStages": "gristmill.models.definition",
    "ModelVersion": "gristmill.models.registry",
    "Pipeline": "gristmill.pipelines",
    "Resources": "gristmill.options",
    "Retry": "gristmill.options",
    "Run": "gristmill.client",
    "RunConfig": "gristmill.options",
    "RunFailedError": "gristmill.errors",
    "Step": "gristmill.steps",
    "StepConfig": "gristmill.options",
    "StepContext": "gristmill.execution.context",
    "StepOptions": "gristmill.options",
    "StepRun": "gristmill.client",
    "get_step_context": "gristmill.execution.context",
    "load_pipeline": "gristmill.yaml_pipelines",
    "log_metadata": "gristmill.execution.context",
    "log_metric": "gristmill.execution.metrics",
    "log_metrics": "gristmill.execution.metrics",
    "pipeline": "gristmill.pipelines",
    "step": "gristmill.steps",
}

if TYPE_CHECKING:
    from typing import Any

    from gristmill.client import ArtifactVersion, Client, Run, StepRun
    from gristmill.errors import GristmillError, RunFailedError
    from gristmill.execution.context import StepContext, get_step_context, log_metadata
    from gristmill.execution.metrics import log_metric, log_metrics
    from gristmill.models.definition import ArtifactConfig, Model, ModelStages
    from gristmill.models.registry import ModelVersion
    from gristmill.options import Resources, Retry, RunConfig, StepConfig, StepOptions
    from gristmill.pipelines import Pipeline, pipeline
    from gristmill.spec import DVCPath, ExternalArtifact
    from gristmill.steps import Step, step
    from gristmill.yaml_pipelines import load_pipeline


def __getattr__(name: str) -> "Any":
    module = _LOCATIONS.get(name)
    if module is None:
        raise AttributeError(f"module 'gristmill' has no attribute '{name}'")
    value = getattr(__import__(module, fromlist=[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
