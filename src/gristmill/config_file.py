"""Run configuration files (``-c run.yaml``): a pydantic model, its JSON Schema
(``gristmill schema config``), and loading with errors that point at file:line:column."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gristmill._yaml import read_yaml, validation_error
from gristmill.config import RunConfig, StepConfig


class RetryModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    count: int = Field(0, ge=0, description="How many more times to try after a failure.")
    delay: float = Field(0.0, ge=0, description="Seconds to wait before the first retry.")
    backoff: float = Field(1.0, ge=1, description="Factor the delay grows by after each retry.")


class StepConfigModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    parameters: dict[str, Any] = Field(
        default_factory=dict, description="Parameter values for this step."
    )
    cache: bool | None = None
    retries: int | RetryModel | None = Field(
        None, description="A count, or {count, delay, backoff}."
    )
    settings: dict[str, Any] = Field(default_factory=dict, description="Step settings (merged).")
    enable_logs: bool | None = None
    on_success: str | None = Field(None, pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
    on_failure: str | None = Field(None, pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
    version: str | None = None


class RunConfigModel(BaseModel):
    """A gristmill run configuration."""

    model_config = ConfigDict(extra="forbid", title="gristmill run configuration")

    parameters: dict[str, Any] = Field(
        default_factory=dict, description="Pipeline parameter values."
    )
    enable_cache: bool | None = Field(
        None, description="false: run every step, ignoring earlier results."
    )
    run_name: str | None = Field(
        None, description="Run name or template: {pipeline}, {date}, {time}, {id}."
    )
    tags: list[str] = Field(default_factory=list)
    steps: dict[str, StepConfigModel] = Field(
        default_factory=dict, description="Step id → overrides."
    )
    settings: dict[str, Any] = Field(default_factory=dict, description="Pipeline-level settings.")


def config_schema() -> dict[str, Any]:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        **RunConfigModel.model_json_schema(),
    }


def load_run_config(path: str | Path) -> RunConfig:
    """A run configuration file, validated."""
    document = read_yaml(path)
    if document.data is None:
        return RunConfig()
    if not isinstance(document.data, dict):
        raise document.error((), "a run configuration is a mapping (parameters, steps, ...)")
    try:
        model = RunConfigModel.model_validate(document.data)
    except ValidationError as exc:
        raise validation_error(document, exc, RunConfigModel) from None
    steps = {}
    for step_id, step in model.steps.items():
        data = step.model_dump(exclude_unset=True)
        if isinstance(step.retries, RetryModel):
            data["retries"] = step.retries.model_dump()
        steps[step_id] = StepConfig(**data)
    config = RunConfig(
        parameters=dict(model.parameters),
        enable_cache=model.enable_cache,
        run_name=model.run_name,
        tags=list(model.tags),
        steps=steps,
        settings=dict(model.settings),
    )
    config.source = str(path)
    return config
