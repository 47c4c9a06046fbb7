"""Tracing pipelines into specs, and every definition error being caught before a step runs."""

from typing import Annotated, Any

import pytest

from gristmill import pipeline, step
from gristmill.errors import ConfigError, ParameterError, PipelineDefinitionError, RunFailedError

RAN: list[str] = []


@step
def load(n: int = 3) -> list:
    RAN.append("load")
    return list(range(n))


@step
def train(xs: list, lr: float = 0.1, tags: list | None = None) -> Annotated[float, "model"]:
    RAN.append("train")
    return sum(xs) * lr


@step
def pair(xs: list) -> tuple[Annotated[list, "left"], Annotated[list, "right"]]:
    return xs[:1], xs[1:]


@step
def note() -> None:
    RAN.append("note")


@step
def count(n: int) -> int:
    return n


def setup_function() -> None:
    RAN.clear()


def test_trace_records_steps_inputs_and_parameter_references() -> None:
    @pipeline
    def training(lr: float = 0.1, n: int = 3) -> None:
        train(load(n), lr=lr, tags=["a"])

    spec = training.spec()
    assert [s.id for s in spec.steps] == ["load", "train"]
    assert spec.step("load").parameters == {"n": "${n}"}
    assert spec.step("train").parameters == {"lr": "${lr}", "tags": ["a"]}
    assert str(spec.step("train").inputs["xs"]) == "load.output"
    assert spec.parameters["lr"].type == "float"
    assert spec.parameters["lr"].default == 0.1
    # The spec does not depend on parameter values: one pipeline version for every value.
    assert training.spec(lr=0.5).hash == spec.hash
    assert RAN == []  # tracing runs no step


def test_reused_steps_get_suffixed_ids_and_explicit_ids_are_kept() -> None:
    @pipeline
    def p() -> None:
        a = load()
        load(5)
        train(a, id="fit")
        train(load())

    assert [s.id for s in p.spec().steps] == ["load", "load_2", "fit", "load_3", "train"]


def test_several_outputs_unpack_or_index_by_name() -> None:
    @pipeline
    def p() -> None:
        left, right = pair(load())
        train(left)
        train(pair(load())["right"], id="by_name")

    spec = p.spec()
    assert str(spec.step("train").inputs["xs"]) == "pair.left"
    assert str(spec.step("by_name").inputs["xs"]) == "pair_2.right"


def test_after_orders_steps_without_data() -> None:
    @pipeline
    def p() -> None:
        first = note()
        load(after=first)
        load(after=["note", first], id="again")

    spec = p.spec()
    assert spec.step("load").after == ["note"]
    assert spec.step("again").after == ["note"]
    assert spec.validate() == ["note", "load", "again"]


def test_literal_dollar_strings_are_escaped() -> None:
    @step
    def echo(text: str) -> str:
        return text

    @pipeline
    def p() -> None:
        echo("${not_a_param}")

    spec = p.spec()
    assert spec.step("echo").parameters["text"] == "$${not_a_param}"
    plan = p.compile()
    assert plan.steps["echo"].parameters["text"] == "${not_a_param}"


def _line_of(text: str) -> str:
    import inspect

    source, start = inspect.getsourcelines(test_errors_name_file_and_line)
    for offset, line in enumerate(source):
        if text in line:
            return f"test_pipelines.py:{start + offset}"
    raise AssertionError(text)


def test_errors_name_file_and_line() -> None:
    @pipeline
    def p() -> None:
        train(load(), lrr=0.2)  # the typo

    with pytest.raises(ParameterError) as caught:
        p.compile()
    message = str(caught.value)
    assert _line_of("# the typo") in message
    assert "did you mean 'lr'" in message


@pytest.mark.parametrize(
    ("body", "error", "message"),
    [
        (
            lambda: train(load(), lr="fast"),
            ParameterError,
            "parameter 'lr' must be float, got 'fast'",
        ),
        (lambda: train(load(), tags={1, 2}), ParameterError, "is not JSON"),
        (lambda: train(object()), ParameterError, "not JSON"),
        (lambda: train(pair(load())), PipelineDefinitionError, "gets all 2 outputs of step 'pair'"),
        (
            lambda: train(pair(load())["middle"]),
            PipelineDefinitionError,
            "no output 'middle' \\(valid: 'left', 'right'\\)",
        ),
        (lambda: train(note()), PipelineDefinitionError, "use after=... to order steps"),
        (lambda: train([load()]), PipelineDefinitionError, "holds step outputs inside a list"),
        (lambda: load(after=3.5), PipelineDefinitionError, "after= of step 'load' takes"),
        (lambda: load(1, 2), ParameterError, "too many positional arguments"),
        (lambda: count(), ParameterError, "argument 'n' of 'count' has no value"),
        (lambda: load(id=7), PipelineDefinitionError, "id= must be a string"),
    ],
)
def test_bad_invocations(body: Any, error: type[Exception], message: str) -> None:
    @pipeline
    def p() -> None:
        body()

    with pytest.raises(error, match=message):
        p.compile()
    assert RAN == []


def test_a_cycle_made_with_after_is_rejected() -> None:
    @pipeline
    def p() -> None:
        note(id="first", after="second")
        note(id="second", after="first")

    with pytest.raises(
        PipelineDefinitionError, match=r"cycle: (first|second) -> (second|first) -> "
    ):
        p.compile()


def test_placeholder_misuse_is_explained() -> None:
    @pipeline
    def truthy() -> None:
        if load():
            note()

    @pipeline
    def attribute() -> None:
        train(load().copy())

    @pipeline
    def unpack() -> None:
        a, b = load()

    for p, what in [
        (truthy, "truth test"),
        (attribute, "attribute '.copy'"),
        (unpack, "unpacking"),
    ]:
        with pytest.raises(PipelineDefinitionError, match=what) as caught:
            p.compile()
        assert "placeholders" in str(caught.value)


def test_type_mismatch_between_output_and_input() -> None:
    @step
    def text() -> str:
        return "x"

    @pipeline
    def p() -> None:
        train(text())

    with pytest.raises(
        PipelineDefinitionError,
        match="input 'xs' expects list, but output 'output' of step 'text' is str",
    ):
        p.compile()


def test_pipeline_parameter_errors() -> None:
    @pipeline
    def p(lr: float = 0.1, n: int = 3) -> None:
        train(load(n), lr=lr)

    with pytest.raises(ParameterError, match="has no parameter 'l' — did you mean 'lr'"):
        p.compile(l=0.2)
    with pytest.raises(ParameterError, match="must be float, got 'x'"):
        p.compile(lr="x")
    with pytest.raises(ParameterError, match="must be int, got True"):
        p.compile(n=True)
    assert p.compile(lr=1).parameters == {"lr": 1.0, "n": 3}

    @pipeline
    def needs(n: int) -> None:
        load(n)

    with pytest.raises(ParameterError, match="needs a value for parameter 'n'"):
        needs.compile()
    assert needs.compile(4).parameters == {"n": 4}


def test_non_json_default_of_a_pipeline_parameter() -> None:
    @pipeline
    def p(x: object = object()) -> None:
        note()

    with pytest.raises(ParameterError, match="default of parameter 'x'"):
        p.compile()


def test_empty_pipelines_are_refused() -> None:
    @pipeline
    def empty() -> None:
        pass

    with pytest.raises(PipelineDefinitionError, match="calls no steps"):
        empty.compile()


def test_run_configuration_must_name_existing_steps() -> None:
    @pipeline
    def p() -> None:
        train(load())

    with pytest.raises(
        ConfigError, match="step 'trian', which pipeline 'p' does not have — did you mean 'train'"
    ):
        p.with_options(steps={"trian": {"cache": False}}).compile()
    with pytest.raises(ConfigError, match="unknown option"):
        p.with_options(steps={"train": {"cahce": False}})


def test_with_options_and_step_parameter_overrides() -> None:
    @pipeline
    def p(lr: float = 0.1) -> None:
        train(load(), lr=lr)

    plan = p.with_options(
        steps={"train": {"parameters": {"lr": 0.5}, "retries": 2}}, enable_cache=False
    ).compile()
    assert plan.steps["train"].parameters["lr"] == 0.5
    assert plan.steps["train"].retries.count == 2
    assert plan.steps["train"].cache is False
    with pytest.raises(ParameterError, match="has no parameter 'rate'"):
        p.with_options(steps={"train": {"parameters": {"rate": 0.5}}}).compile()


# -- types checked at compile where they can be, at run time where they cannot -----------------


def test_any_and_unannotated_outputs_feed_typed_inputs(project: Any) -> None:
    """``Any`` (a class on Python 3.11+) and a missing annotation mean "checked at run time"."""
    from typing import Any as AnyType

    @step
    def loose() -> AnyType:
        return [1, 2]

    @step
    def unannotated():  # type: ignore[no-untyped-def]
        return [3]

    @step
    def typed(xs: list, ys: list) -> int:
        return len(xs) + len(ys)

    @pipeline
    def p() -> None:
        typed(loose(), unannotated())

    assert p().steps["typed"].output().load() == 3


@pytest.mark.parametrize(
    ("returned", "annotation", "ok"),
    [
        ("text", int, False),
        (3, float, True),
        (True, float, False),
        (2.5, int, False),
        ([1], list, True),
        ((1,), list, False),
        (None, int, False),
    ],
)
def test_returned_values_are_checked_against_their_annotation(
    project: Any, returned: Any, annotation: type, ok: bool
) -> None:
    from gristmill.errors import OutputTypeError

    def make() -> Any:
        return returned

    make.__annotations__["return"] = annotation
    producer = step(make)

    @pipeline
    def p() -> None:
        producer()

    if ok:
        assert p().steps["make"].output().load() == returned
        return
    with pytest.raises(RunFailedError) as caught:
        p()
    cause = caught.value.__cause__
    assert isinstance(cause, OutputTypeError)
    assert f"output 'output' is annotated {annotation.__name__}" in str(cause)
    assert "step 'make'" in str(cause)
    failed = caught.value.run.steps["make"]
    assert failed.status == "failed" and "OutputTypeError" in (failed.error or "")
