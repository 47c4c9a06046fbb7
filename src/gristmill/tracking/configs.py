"""Settings of the experiment tracker flavors (pydantic; imported only to validate settings)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class MLflowTrackerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tracking_uri: str | None = Field(
        None,
        description="Where MLflow records runs: a folder, a sqlite:/// URI or a server URL "
        "(default: MLflow's own, MLFLOW_TRACKING_URI).",
    )
    experiment: str | None = Field(
        None, description="The MLflow experiment (default: the run's gristmill experiment)."
    )
    autolog: bool = Field(True, description="Turn on mlflow.autolog() in tracked steps.")
    nested: bool = Field(
        False, description="Each step's run is a child of one MLflow run per gristmill run."
    )
    register_models: bool = Field(
        False,
        description="Register model outputs (ArtifactConfig(is_model_artifact=True)) of runs "
        "with a gristmill Model in MLflow's model registry, under the model's name.",
    )
    tags: dict[str, str] = Field(default_factory=dict, description="Tags on every MLflow run.")


class WandbTrackerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    project: str | None = Field(
        None, description="The W&B project (default: the run's gristmill experiment)."
    )
    entity: str | None = Field(None, description="The W&B user or team.")
    mode: Literal["online", "offline", "disabled"] | None = Field(
        None, description="W&B's mode (default: WANDB_MODE, else online)."
    )
    directory: str | None = Field(
        None, description="Where W&B writes its run folders (default: W&B's, ./wandb)."
    )
    tags: list[str] = Field(default_factory=list, description="Tags on every W&B run.")
    api_key: str | None = Field(None, description="A secret reference to the W&B API key.")
