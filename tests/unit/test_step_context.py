"""What a running step sees of itself: its resolved settings and options, and the artifact
versions it received as inputs."""

from __future__ import annotations

from typing import Annotated, Any

import pytest

from gristmill import get_step_context, pipeline, step
from gristmill.execution.context import InputArtifact
from gristmill.options import Retry


@step
def make() -> Annotated[int, "number"]:
    return 3


@step
def words() -> list[str]:
    return ["a", "b"]


def test_settings_options_and_inputs() -> None:
    seen: dict[str, Any] = {}

    @step(settings={"team": "ml", "resources": {"cpu": 2}}, retries=1, version="2")
    def use(number: int, texts: list[str], scale: int = 2) -> int:
        context = get_step_context()
        seen["settings"] = context.settings
        seen["options"] = context.options
        seen["inputs"] = dict(context.inputs)
        seen["parameters"] = context.parameters
        return number * scale

    @pipeline
    def p() -> None:
        use(make(), words())

    run = p.with_options(steps={"use": {"settings": {"team": "infra"}}})()
    # resolved: the run configuration over the decorator, key by key
    assert seen["settings"] == {"team": "infra"}  # resources are an option, not a setting
    assert seen["options"].retries == Retry(count=1)
    assert seen["options"].version == "2"
    assert seen["options"].settings == seen["settings"]
    assert seen["parameters"] == {"scale": 2}  # parameters are not inputs

    inputs = seen["inputs"]
    assert set(inputs) == {"number", "texts"}
    number = inputs["number"]
    assert isinstance(number, InputArtifact)
    stored = run.steps["make"].outputs["number"]
    assert (number.id, number.name, number.version) == (stored.id, "number", stored.version)
    assert (number.uri, number.content_hash) == (stored.uri, stored.content_hash)
    assert number.producer_step_run_id == run.steps["make"].id
    assert number.data_type == stored.data_type and number.size == stored.size
    assert inputs["texts"].id == run.steps["words"].outputs["output"].id
    assert repr(number) == f"<InputArtifact number:{stored.version} {stored.data_type}>"


def test_a_step_without_inputs_or_settings_sees_empty_ones() -> None:
    seen: dict[str, Any] = {}

    @step
    def alone() -> int:
        context = get_step_context()
        seen["inputs"], seen["settings"] = context.inputs, context.settings
        return 1

    @pipeline
    def p() -> None:
        alone()

    p()
    assert dict(seen["inputs"]) == {} and seen["settings"] == {}
    with pytest.raises(TypeError):
        seen["inputs"]["x"] = 1  # read-only
