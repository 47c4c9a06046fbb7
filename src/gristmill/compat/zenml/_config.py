"""ZenML run-configuration YAML (``with_options(config_path=...)``) translated to gristmill's
``RunConfig``. ZenML's names map one to one where gristmill has the same idea; options that
have no meaning here are ignored (listed in ``IGNORED``); anything else is an error naming the
file, line and the nearest gristmill way to do it. It reads and converts; it runs nothing."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from gristmill._yaml import YamlDocument, read_yaml
from gristmill.errors import ConfigError, did_you_mean
from gristmill.options import RunConfig

# ZenML options that only steer ZenML's own bookkeeping; gristmill records artifacts and
# their metadata always, and model versions are stored in its registry.
IGNORED = frozenset(
    {
        "enable_artifact_metadata",
        "enable_artifact_visualization",
        "save_models_to_registry",
        "suppress_class_validation_warnings",
    }
)

# What is not supported, with the gristmill way to get it (or why there is none).
UNSUPPORTED = {
    "schedule": "gristmill has no schedules yet: start runs from your orchestrator or cron",
    "build": "gristmill builds images through the stack's image builder, not per run",
    "extra": "put free values in `settings:` (steps read them from get_step_context().settings)",
    "substitutions": "name runs with `run_name:` templates ({date}, {time}, {pipeline}, {id})",
    "outputs": "choose materializers by the output's type hint; name outputs with Annotated",
    "failure_hook_source": "give the step on_failure= in code ('module:function')",
    "success_hook_source": "give the step on_success= in code ('module:function')",
    "model_version_id": "name the version: model: {name: ..., version: ...}",
    "enable_step_logs": "set it per step (steps: {NAME: {enable_step_logs: false}})",
}

_MODEL_FIELDS = frozenset(
    {
        "name",
        "version",
        "description",
        "license",
        "tags",
        "audience",
        "use_cases",
        "limitations",
        "trade_offs",
        "ethics",
    }
)
_TOP = frozenset({"parameters", "run_name", "enable_cache", "tags", "settings", "steps", "model"})
_STEP = frozenset(
    {
        "parameters",
        "settings",
        "enable_cache",
        "enable_step_logs",
        "experiment_tracker",
        "step_operator",
        "retry",
        "model",
    }
)


class _Source:
    """Where the values come from, for error messages (a file with lines, or a mapping)."""

    def __init__(self, document: YamlDocument | None, label: str) -> None:
        self.document = document
        self.label = label

    def error(self, path: tuple[Any, ...], message: str) -> ConfigError:
        if self.document is not None:
            return self.document.error(path, message, key=True)
        where = ".".join(str(p) for p in path)
        return ConfigError(f"{self.label}: {where + ': ' if where else ''}{message}")


def load_zenml_config(path: str | os.PathLike[str]) -> RunConfig:
    """A ZenML run-configuration file as a gristmill ``RunConfig``."""
    document = read_yaml(os.fspath(path))
    if document.data is None:
        return RunConfig()
    return _translate(document.data, _Source(document, os.fspath(path)))


def zenml_run_config(data: Mapping[str, Any], *, where: str = "ZenML configuration") -> RunConfig:
    """A ZenML run configuration given as a mapping, as a gristmill ``RunConfig``."""
    return _translate(data, _Source(None, where))


def _translate(data: Any, source: _Source) -> RunConfig:
    if not isinstance(data, Mapping):
        raise source.error((), "a run configuration is a mapping (parameters, model, steps, ...)")
    result: dict[str, Any] = {}
    for key, value in data.items():
        if key in IGNORED:
            continue
        if key == "model_version" and "model" in data:  # ZenML's older name of model:
            raise source.error((key,), "give either model: or model_version:, not both")
        if key in ("model", "model_version"):
            result["model"] = _model(value, (key,), source)
            continue
        _check_key(key, _TOP, (key,), source)
        if key == "steps":
            result["steps"] = _steps(value, source)
        else:
            result[key] = value
    return RunConfig.from_dict(result, where=source.label)


def _check_key(key: Any, allowed: frozenset[str], path: tuple[Any, ...], source: _Source) -> None:
    if key in allowed:
        return
    hint = UNSUPPORTED.get(key)
    if hint is not None:
        raise source.error(path, f"ZenML's '{key}' is not supported by gristmill: {hint}")
    raise source.error(
        path,
        f"unknown option '{key}'{did_you_mean(str(key), sorted(allowed))} "
        f"(options here: {', '.join(sorted(allowed))})",
    )


def _model(value: Any, path: tuple[Any, ...], source: _Source) -> dict[str, Any] | str:
    if isinstance(value, str):
        return value
    if not isinstance(value, Mapping):
        raise source.error(path, "model is a mapping: {name: ..., version: ...}")
    model: dict[str, Any] = {}
    for key, item in value.items():
        if key in IGNORED:
            continue
        _check_key(key, _MODEL_FIELDS, (*path, key), source)
        model[key] = item
    return model


def _steps(value: Any, source: _Source) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise source.error(("steps",), "steps is a mapping: step name -> its options")
    steps: dict[str, Any] = {}
    for step_id, options in value.items():
        path = ("steps", step_id)
        if options is None:
            continue
        if not isinstance(options, Mapping):
            raise source.error(path, "a step's options are a mapping (parameters, settings, ...)")
        steps[step_id] = _step(options, path, source)
    return steps


def _step(options: Mapping[str, Any], path: tuple[Any, ...], source: _Source) -> dict[str, Any]:
    step: dict[str, Any] = {}
    settings: dict[str, Any] = {}
    for key, value in options.items():
        if key in IGNORED:
            continue
        _check_key(key, _STEP, (*path, key), source)
        if key == "enable_cache":
            step["cache"] = value
        elif key == "enable_step_logs":
            step["enable_logs"] = value
        elif key in ("experiment_tracker", "step_operator"):
            step[key] = value
        elif key == "retry":
            step["retries"] = retry_options(value, where=f"{source.label}: {'.'.join(path)}.retry")
        elif key == "model":
            step["model"] = _model(value, (*path, key), source)
        elif key == "settings":
            if not isinstance(value, Mapping):
                raise source.error((*path, key), "settings is a mapping")
            settings.update(value)
        else:
            step[key] = value
    if settings:
        step["settings"] = settings
    return step


def retry_options(value: Any, *, where: str) -> dict[str, Any]:
    """ZenML's step retry (``{max_retries, delay, backoff}``, or a ``StepRetryConfig``-like
    object with those attributes) as gristmill's ``{count, delay, backoff}``."""
    if not isinstance(value, Mapping):
        value = {
            name: getattr(value, name)
            for name in ("max_retries", "delay", "backoff")
            if hasattr(value, name)
        }
        if not value:
            raise ConfigError(f"{where}: retry is {{max_retries: N, delay: S, backoff: F}}")
    unknown = set(value) - {"max_retries", "delay", "backoff"}
    if unknown:
        raise ConfigError(
            f"{where}: unknown retry option(s) {sorted(unknown)}: use max_retries, delay, backoff"
        )
    retry: dict[str, Any] = {}
    if "max_retries" in value:
        retry["count"] = value["max_retries"]
    if "delay" in value:
        retry["delay"] = value["delay"]
    if "backoff" in value:
        retry["backoff"] = value["backoff"]
    return retry
