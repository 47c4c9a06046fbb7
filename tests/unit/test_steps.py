from typing import Annotated, Any

import pytest

from gristmill import Resources, Retry, step
from gristmill.errors import PipelineDefinitionError
from gristmill.steps import Step


def test_a_step_called_outside_a_pipeline_is_the_plain_function() -> None:
    @step
    def add(a: int, b: int = 2) -> int:
        """Adds."""
        return a + b

    assert isinstance(add, Step)
    assert add(1) == 3
    assert add(1, b=5) == 6
    assert add.__name__ == "add"
    assert add.__doc__ == "Adds."
    assert add.__wrapped__(2, 2) == 4


def test_outputs_from_annotations() -> None:
    @step
    def single() -> int:
        return 1

    @step
    def named() -> Annotated[int, "answer"]:
        return 42

    @step
    def several() -> tuple[Annotated[int, "a"], Annotated[str, "b"]]:
        return 1, "x"

    @step
    def unnamed_pair() -> tuple[int, int]:
        return 1, 2

    @step
    def nothing() -> None:
        return None

    @step
    def untyped():  # type: ignore[no-untyped-def]
        return 1

    @step
    def variadic() -> tuple[int, ...]:
        return (1, 2)

    assert list(single.outputs) == ["output"]
    assert single.outputs["output"].type == "builtins.int"
    assert named.outputs["answer"].artifact_name == "answer"
    assert list(several.outputs) == ["a", "b"]
    assert list(unnamed_pair.outputs) == ["output_0", "output_1"]
    assert nothing.outputs == {}
    assert untyped.outputs["output"].type == "typing.Any"
    assert list(variadic.outputs) == ["output"]


def test_duplicate_output_names_are_rejected() -> None:
    @step
    def twice() -> tuple[Annotated[int, "a"], Annotated[int, "a"]]:
        return 1, 2

    with pytest.raises(PipelineDefinitionError, match="declares the output 'a' twice"):
        _ = twice.outputs


def test_reserved_and_variadic_arguments_are_rejected() -> None:
    with pytest.raises(PipelineDefinitionError, match="'after' is reserved"):

        @step
        def bad(after: int) -> int:
            return after

    with pytest.raises(PipelineDefinitionError, match=r"\*args is not supported"):

        @step
        def bad2(*args: Any) -> int:
            return 1


def test_async_steps_are_rejected() -> None:
    with pytest.raises(PipelineDefinitionError, match="async or a generator"):

        @step
        async def bad() -> int:
            return 1


def test_options_and_with_options() -> None:
    def alert(exc: BaseException) -> None:
        pass

    @step(cache=False, retries=2, on_failure=alert, settings={"resources": {"cpu": 2}}, version="3")
    def s() -> int:
        return 1

    assert s.options.cache is False
    assert s.options.retries == Retry(count=2)
    spec = s.options.to_spec()
    assert spec["retries"] == {"count": 2, "delay": 0.0, "backoff": 1.0}
    assert spec["on_failure"].endswith(":test_options_and_with_options.<locals>.alert")
    other = s.with_options(cache=True, settings={"gpu": 1}, name="renamed")
    assert other.options.cache is True
    assert other.options.settings == {"gpu": 1}
    assert other.options.resources == Resources(cpu=2)  # a setting named resources: the option
    assert other.name == "renamed"
    assert s.options.cache is False  # the original is unchanged


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("3", "retries must be"),
        ({"count": 1, "wait": 2}, "unknown retries option"),
        ({"count": -1}, "retry count must be a number >= 0"),
        ({"count": 1, "backoff": 0.5}, "retry backoff must be a number >= 1"),
    ],
)
def test_bad_retries(value: Any, message: str) -> None:
    with pytest.raises(PipelineDefinitionError, match=message):
        step(retries=value)(lambda: 1)


def test_unresolvable_type_hints_name_the_step() -> None:
    @step
    def s(x: "NotDefinedAnywhere") -> int:  # type: ignore[name-defined]  # noqa: F821
        return 1

    with pytest.raises(PipelineDefinitionError, match="type hints cannot be resolved"):
        _ = s.inputs
