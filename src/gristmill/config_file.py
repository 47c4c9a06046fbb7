"""Run configuration files (``-c run.yaml``): loading a ``RunConfig`` with errors that point at
file:line:column, and its JSON Schema (``gristmill schema config``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gristmill._yaml import read_yaml, validation_error
from gristmill.options import RunConfig, adapter, json_schema


def config_schema() -> dict[str, Any]:
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **json_schema(RunConfig)}


def load_run_config(path: str | Path) -> RunConfig:
    """A run configuration file, validated."""
    from pydantic import ValidationError

    document = read_yaml(path)
    if document.data is None:
        return RunConfig()
    if not isinstance(document.data, dict):
        raise document.error((), "a run configuration is a mapping (parameters, steps, ...)")
    try:
        config: RunConfig = adapter(RunConfig).validate_python(document.data)
    except ValidationError as exc:
        raise validation_error(document, exc, RunConfig) from None
    return config
