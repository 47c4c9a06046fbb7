"""One options model, one merge rule, one precedence order: defaults < @step < step
with_options < pipeline with_options < configuration file < call arguments (and -p)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gristmill import Resources, Retry, RunConfig, StepConfig, StepOptions, pipeline, step
from gristmill.config_file import config_schema
from gristmill.errors import ConfigError, PipelineDefinitionError
from gristmill.options import STEP_DEFAULTS, merge


@step(cache=False, retries=1, version="decorator", settings={"k": "decorator", "only_decorator": 1})
def train(lr: float = 0.1) -> float:
    return lr


@pipeline
def flow(lr: float = 0.5) -> None:
    train(lr=lr)


def resolved(p: Any, **call: Any) -> tuple[StepOptions, dict[str, Any]]:
    plan = p.compile(**call)
    return plan.steps["train"].options, plan.parameters


# Each row: the levels that say something, and what the step resolves to.
LEVELS = ["decorator", "step_with_options", "pipeline", "config_file", "call"]
TABLE: list[tuple[str, dict[str, Any], Any]] = [
    # option, value each level sets (missing: that level says nothing), expected
    ("version", {"decorator": "decorator"}, "decorator"),
    ("version", {"decorator": "decorator", "step_with_options": "step"}, "step"),
    ("version", {"step_with_options": "step", "pipeline": "pipeline"}, "pipeline"),
    ("version", {"pipeline": "pipeline", "config_file": "file"}, "file"),
    ("version", {"config_file": "file", "call": "call"}, "call"),
    ("cache", {"decorator": False}, False),
    ("cache", {"decorator": False, "pipeline": True}, True),
    ("cache", {"decorator": False, "pipeline": True, "config_file": False}, False),
    ("retries", {"decorator": 1}, Retry(count=1)),
    ("retries", {"decorator": 1, "config_file": {"count": 3, "delay": 2}}, Retry(3, 2.0)),
    ("retries", {"decorator": 1, "config_file": 3, "call": 0}, Retry(count=0)),
    ("enable_logs", {}, True),
    ("enable_logs", {"pipeline": False}, False),
]


def build(tmp_path: Path, option: str, levels: dict[str, Any]) -> Any:
    base = train
    if "decorator" not in levels:
        # The module-level step sets every option in the table; start from a bare one here.
        base = step(train.func)
    elif option != "version":
        base = step(train.func).with_options(**{option: levels["decorator"]})
    if "step_with_options" in levels:
        base = base.with_options(**{option: levels["step_with_options"]})

    @pipeline(name="flow")
    def local_flow(lr: float = 0.5) -> None:
        base(lr=lr)

    p = local_flow
    if "pipeline" in levels:
        p = p.with_options(steps={"train": {option: levels["pipeline"]}})
    if "config_file" in levels:
        path = tmp_path / "run.yaml"
        path.write_text(json.dumps({"steps": {"train": {option: levels["config_file"]}}}))
        p = p.with_options(config=path)
    if "call" in levels:
        p = p.with_options(steps={"train": StepConfig(**{option: levels["call"]})})
    return p


@pytest.mark.parametrize(("option", "levels", "expected"), TABLE)
def test_step_option_precedence(
    tmp_path: Path, option: str, levels: dict[str, Any], expected: Any
) -> None:
    options, _ = resolved(build(tmp_path, option, levels))
    assert getattr(options, option) == expected


def test_settings_merge_key_by_key_across_levels(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("steps:\n  train:\n    settings: {k: file, from_file: 3}\n")
    p = flow.with_options(steps={"train": {"settings": {"k": "pipeline", "from_pipeline": 2}}})
    options, _ = resolved(p.with_options(config=path))
    assert options.settings == {
        "k": "file",
        "only_decorator": 1,
        "from_pipeline": 2,
        "from_file": 3,
    }


def test_parameters_default_then_file_then_call(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("parameters: {lr: 0.7}\nsteps:\n  train: {parameters: {}}\n")
    assert resolved(flow)[1] == {"lr": 0.5}
    configured = flow.with_options(config=path)
    assert resolved(configured)[1] == {"lr": 0.7}
    assert resolved(configured, lr=0.9)[1] == {"lr": 0.9}


def test_pipeline_level_options_merge_with_one_rule(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("enable_cache: true\ntags: [file]\nrun_name: 'from-file-{id}'\n")
    p = pipeline(enable_cache=False, tags=["decorator"])(flow.func)
    assert p.config.enable_cache is False
    p = p.with_options(config=path, tags=["call"])
    assert p.config.enable_cache is True
    assert p.config.tags == ["decorator", "file", "call"]
    assert p.config.run_name == "from-file-{id}"
    # The orchestrator choice is replaced whole, never mixed across flavors.
    p = p.with_options(orchestrator={"flavor": "local_parallel", "max_workers": 2})
    p = p.with_options(orchestrator="local")
    assert p.config.orchestrator == {"flavor": "local"}


def test_none_inherits_and_empty_chooses_nothing() -> None:
    base = StepOptions(cache=False, settings={"a": 1})
    assert merge(base, StepOptions()) == base
    assert merge(base, StepOptions(settings={})) == base
    assert STEP_DEFAULTS.merged(base).cache is False
    assert STEP_DEFAULTS.merged(base).retries == Retry()


def test_a_yaml_step_can_lower_what_the_decorator_chose(tmp_path: Path) -> None:
    """The spec is the whole truth: a YAML ``retries: 0`` beats the decorator's ``retries=1``
    (the plan does not fall back to the function's own options)."""
    from gristmill import load_pipeline

    (tmp_path / "pipeline.yaml").write_text(
        "name: y\nsteps:\n"
        "  load: {uses: 'fixtures.yaml_steps:load'}\n"
        "  split: {uses: 'fixtures.yaml_steps:split', inputs: {xs: load}, settings: {retries: 0}}\n"
    )
    plan = load_pipeline(tmp_path / "pipeline.yaml").compile()
    assert plan.steps["split"].retries == Retry(count=0)
    assert plan.steps["split"].settings == {}
    assert plan.steps["split"].options.resources == Resources(cpu=1)  # an option, not a setting


@pytest.mark.parametrize(
    ("build_options", "message"),
    [
        (lambda: StepOptions(retries=-1), "retries must be a number >= 0"),
        (lambda: StepOptions(retries="3"), "retries must be a count"),
        (lambda: StepOptions(on_success="not a path"), "is not 'module:function'"),
        (lambda: Retry(backoff=0.5), "retry backoff must be a number >= 1"),
        (lambda: RunConfig(orchestrator={"max_workers": 2}), 'needs a "flavor" key'),
    ],
)
def test_invalid_options_are_refused_where_built(build_options: Any, message: str) -> None:
    with pytest.raises((PipelineDefinitionError, ConfigError), match=message):
        build_options()


def test_invalid_options_from_a_mapping_name_the_step() -> None:
    with pytest.raises(ConfigError, match=r"steps\.train.*cahce: unknown option"):
        flow.with_options(steps={"train": {"cahce": False}})


def test_schemas_come_from_the_models() -> None:
    schema = config_schema()
    step_schema = schema["$defs"]["StepConfig"]["properties"]
    assert set(step_schema) == {
        *StepOptions.__dataclass_fields__,
        "parameters",
    }
    assert schema["$defs"]["Retry"]["properties"]["count"]["minimum"] == 0
    assert set(schema["properties"]) == set(RunConfig.__dataclass_fields__)
    from gristmill.yaml_pipelines import pipeline_schema

    yaml_step = pipeline_schema()["$defs"]["StepOptions"]
    assert set(yaml_step["properties"]) == set(StepOptions.__dataclass_fields__)
