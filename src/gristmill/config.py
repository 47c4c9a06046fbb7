"""Run configuration: what a caller chooses for one run (parameters, caching, per-step
overrides, run name, tags). Plain data; validation against the pipeline happens at compile."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gristmill.errors import ConfigError

STEP_OPTION_KEYS = frozenset(
    {
        "cache",
        "retries",
        "settings",
        "enable_logs",
        "parameters",
        "on_success",
        "on_failure",
        "version",
    }
)


@dataclass
class StepConfig:
    """Overrides for one step invocation; ``None`` keeps what the step declares."""

    cache: bool | None = None
    retries: Any = None
    settings: dict[str, Any] = field(default_factory=dict)
    enable_logs: bool | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    on_success: str | None = None
    on_failure: str | None = None
    version: str | None = None

    @classmethod
    def from_dict(cls, step_id: str, data: dict[str, Any]) -> StepConfig:
        unknown = set(data) - STEP_OPTION_KEYS
        if unknown:
            raise ConfigError(
                f"step '{step_id}': unknown option(s) {sorted(unknown)}; valid options are "
                f"{sorted(STEP_OPTION_KEYS)}"
            )
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for key in sorted(STEP_OPTION_KEYS):
            value = getattr(self, key)
            if value is not None and value != {}:
                data[key] = value
        return data


@dataclass
class RunConfig:
    """The configuration of one run. Precedence, highest first: explicit call arguments and
    ``-p`` flags, then a configuration file, then what the pipeline and its steps declare."""

    parameters: dict[str, Any] = field(default_factory=dict)
    enable_cache: bool | None = None
    run_name: str | None = None
    tags: list[str] = field(default_factory=list)
    steps: dict[str, StepConfig] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    # The file it was read from, for messages about what it says.
    source: str | None = field(default=None, compare=False)

    def merged(self, other: RunConfig) -> RunConfig:
        """This configuration overridden by ``other`` where ``other`` says something."""
        steps = dict(self.steps)
        for step_id, step_config in other.steps.items():
            base = steps.get(step_id, StepConfig())
            steps[step_id] = StepConfig(
                cache=step_config.cache if step_config.cache is not None else base.cache,
                retries=step_config.retries if step_config.retries is not None else base.retries,
                settings={**base.settings, **step_config.settings},
                enable_logs=step_config.enable_logs
                if step_config.enable_logs is not None
                else base.enable_logs,
                parameters={**base.parameters, **step_config.parameters},
                on_success=step_config.on_success or base.on_success,
                on_failure=step_config.on_failure or base.on_failure,
                version=step_config.version or base.version,
            )
        return RunConfig(
            parameters={**self.parameters, **other.parameters},
            enable_cache=other.enable_cache
            if other.enable_cache is not None
            else self.enable_cache,
            run_name=other.run_name or self.run_name,
            tags=[*self.tags, *(t for t in other.tags if t not in self.tags)],
            steps=steps,
            settings={**self.settings, **other.settings},
        )

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"parameters": dict(self.parameters)}
        if self.enable_cache is not None:
            data["enable_cache"] = self.enable_cache
        if self.run_name:
            data["run_name"] = self.run_name
        if self.tags:
            data["tags"] = list(self.tags)
        if self.steps:
            data["steps"] = {k: v.to_dict() for k, v in self.steps.items()}
        if self.settings:
            data["settings"] = dict(self.settings)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        known = {"parameters", "enable_cache", "run_name", "tags", "steps", "settings"}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(
                f"unknown run configuration key(s) {sorted(unknown)}; valid keys are {sorted(known)}"
            )
        return cls(
            parameters=dict(data.get("parameters") or {}),
            enable_cache=data.get("enable_cache"),
            run_name=data.get("run_name"),
            tags=list(data.get("tags") or []),
            steps={
                k: StepConfig.from_dict(k, v or {}) for k, v in (data.get("steps") or {}).items()
            },
            settings=dict(data.get("settings") or {}),
        )
