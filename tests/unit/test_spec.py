import pytest

from gristmill.errors import PipelineDefinitionError
from gristmill.spec import InputRef, OutputSpec, ParameterSpec, PipelineSpec, StepSpec


def _spec(*steps: StepSpec, **params: ParameterSpec) -> PipelineSpec:
    return PipelineSpec(name="p", steps=list(steps), parameters=dict(params))


def _step(
    step_id: str, *inputs: str, after: list[str] | None = None, **parameters: object
) -> StepSpec:
    return StepSpec(
        id=step_id,
        source=f"mod:{step_id}",
        parameters=dict(parameters),
        inputs={f"in{i}": InputRef.parse(ref) for i, ref in enumerate(inputs)},
        after=after or [],
        outputs={"output": OutputSpec("builtins.int")},
    )


def test_json_round_trip_and_stable_hash() -> None:
    spec = _spec(_step("a", x=1), _step("b", "a", y="${lr}"), lr=ParameterSpec("float", 0.1))
    spec.steps[0].origin = "file.py:3"
    again = PipelineSpec.from_json(spec.to_json())
    assert again.to_dict() == spec.to_dict()
    assert again.hash == spec.hash
    # Origins are for messages only: they do not change the hash.
    again.steps[0].origin = "elsewhere.yaml:9"
    assert PipelineSpec.from_dict(again.to_dict()).hash == spec.hash
    # Any structural change does.
    changed = PipelineSpec.from_dict(spec.to_dict())
    changed.steps[0].parameters["x"] = 2
    assert PipelineSpec.from_dict(changed.to_dict()).hash != spec.hash


def test_topological_order_keeps_definition_order_among_independent_steps() -> None:
    spec = _spec(_step("c"), _step("a"), _step("b", "c.output"), _step("d", "a", "b"))
    assert spec.validate() == ["c", "a", "b", "d"]


def test_cycle_is_reported_with_the_path() -> None:
    spec = _spec(_step("a", "c"), _step("b", "a"), _step("c", "b"))
    with pytest.raises(PipelineDefinitionError, match=r"cycle: (a|b|c) -> .* -> \1"):
        spec.validate()


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        (
            [_step("a"), _step("b", "aa")],
            "input 'in0' comes from unknown step 'aa' — did you mean 'a'",
        ),
        (
            [_step("a"), _step("b", "a.outptu")],
            "uses output 'outptu' of step 'a', which has no such output",
        ),
        ([_step("a"), _step("b", after=["x"])], "'after' names unknown step 'x'"),
        ([_step("a"), _step("a")], "two steps with the id 'a'"),
        ([_step("bad id")], "step id 'bad id' is not valid"),
        (
            [_step("a", q="${missing}")],
            "refers to pipeline parameter 'missing', which is not declared",
        ),
    ],
)
def test_invalid_graphs(steps: list[StepSpec], message: str) -> None:
    with pytest.raises(PipelineDefinitionError, match=message):
        _spec(*steps).validate()


def test_downstream_of() -> None:
    spec = _spec(_step("a"), _step("b", "a"), _step("c"), _step("d", "b", "c"))
    assert spec.downstream_of({"b"}) == {"b", "d"}
