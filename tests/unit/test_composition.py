"""Pipelines compose: calling one inside another's body (or ``uses:`` one in YAML) inlines its
steps with ids kept unique and returns its outputs."""

from __future__ import annotations

from pathlib import Path

import pytest

from fixtures import composed
from gristmill import load_pipeline, pipeline
from gristmill.errors import GristmillError, ParameterError


def test_a_pipeline_called_in_a_pipeline_inlines_its_steps() -> None:
    @pipeline
    def training(n: int = 4) -> None:
        raw = composed.features(n=n, factor=10)
        more = composed.features(n=2)  # a second time: its steps get new ids
        composed.total(raw)
        composed.summarize(more)

    spec = training.spec()
    assert [s.id for s in spec.steps] == ["make", "scale", "make_2", "scale_2", "total", "total_2"]
    assert spec.step("make").parameters == {"n": "${n}"}  # the outer parameter flows in
    assert spec.step("scale").parameters == {"factor": 10}
    assert spec.step("make_2").parameters == {"n": 2}
    assert str(spec.step("total_2").inputs["xs"]) == "scale_2.output"
    run = training(n=3)
    assert run.steps["total"].output().load() == 30  # (0 + 1 + 2) * 10
    assert run.steps["total_2"].output().load() == 2  # (0 + 1) * 2


def test_a_composed_pipeline_needs_its_required_parameters() -> None:
    @pipeline
    def outer() -> None:
        composed.summarize()

    with pytest.raises(ParameterError, match="without a value for its parameter 'xs'"):
        outer.compile()


def write(tmp_path: Path, text: str, name: str = "pipeline.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_yaml_uses_a_pipeline(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
name: composed_yaml
parameters: {n: 5}
steps:
  prepare:
    uses: fixtures.composed:features
    parameters: {n: "${n}", factor: 3}
  report:
    uses: fixtures.composed:total
    inputs: {xs: prepare}
  again:
    uses: fixtures.composed:summarize
    inputs: {xs: prepare}
    after: [report]
outputs:
  total: report
""",
    )
    loaded = load_pipeline(path)
    spec = loaded.spec()
    ids = [s.id for s in spec.steps]
    assert ids[:2] == ["make", "scale"] and "report" in ids and "total" in ids
    assert str(spec.step("report").inputs["xs"]) == "scale.output"
    assert spec.step("total").after == ["report"]
    run = loaded(n=4)
    assert run.steps["report"].output().load() == 18  # (0+1+2+3) * 3
    assert run.steps["total"].output().load() == 18


def test_a_yaml_pipeline_called_in_a_python_pipeline(tmp_path: Path) -> None:
    inner = load_pipeline(
        write(
            tmp_path,
            """
name: inner
parameters: {n: 2}
steps:
  make: {uses: "fixtures.composed:make", parameters: {n: "${n}"}}
  scale: {uses: "fixtures.composed:scale", inputs: {xs: make}, parameters: {factor: 5}}
outputs: {scaled: scale}
""",
            "inner.yaml",
        )
    )

    @pipeline
    def outer(n: int = 3) -> None:
        composed.total(inner(n=n))

    run = outer()
    assert run.steps["total"].output().load() == 15  # (0+1+2) * 5


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("{uses: 'fixtures.composed:features', parameters: {m: 1}}", "has no parameter 'm'"),
        (
            "{uses: 'fixtures.composed:features', settings: {cache: false}}",
            "settings apply to steps",
        ),
    ],
)
def test_bad_composition_in_yaml_is_explained(tmp_path: Path, entry: str, message: str) -> None:
    path = write(tmp_path, f"name: x\nsteps:\n  fe: {entry}\n")
    with pytest.raises(GristmillError, match=message) as caught:
        load_pipeline(path)
    assert "pipeline.yaml:3:" in str(caught.value)


# -- export refuses to freeze a graph that depends on parameter values --------------------------


def test_export_of_a_branching_pipeline_is_refused_with_the_fix() -> None:
    from gristmill.errors import PipelineDefinitionError
    from gristmill.yaml_pipelines import pipeline_to_document

    assert composed.branching.graph_parameters() == ["model_type"]
    assert composed.flagged.graph_parameters() == ["with_report"]  # a bool, found by flipping it
    assert composed.straight.graph_parameters() == []
    with pytest.raises(PipelineDefinitionError) as caught:
        pipeline_to_document(composed.branching)
    message = str(caught.value)
    assert "branches on parameter(s) model_type" in message
    assert "model_type='sgd'" in message and "--freeze" in message
    document = pipeline_to_document(composed.branching, {"model_type": "rf"}, freeze=True)
    assert set(document["steps"]) == {"make", "forest"}
    assert document["parameters"]["model_type"] == "rf"


def test_export_from_the_cli_takes_the_variant(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from gristmill.cli.main import cli

    refused = CliRunner().invoke(cli, ["pipeline", "export", "fixtures.composed:branching"])
    assert refused.exit_code == 2 and "branches on parameter(s) model_type" in refused.output
    out = tmp_path / "rf.yaml"
    done = CliRunner().invoke(
        cli,
        [
            "pipeline",
            "export",
            "fixtures.composed:branching",
            "-p",
            "model_type=rf",
            "--freeze",
            "-o",
            str(out),
        ],
    )
    assert done.exit_code == 0, done.output
    run = load_pipeline(out)()
    assert run.steps["forest"].output().load() == "forest of 10 on 3"


def test_a_run_warns_about_parameters_no_step_uses(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="gristmill"):
        composed.straight.compile()
        composed.branching.compile()  # trees is unused in the sgd branch, model_type is tested
    warnings = [r.getMessage() for r in caplog.records]
    assert any("parameter(s) unused reach no step" in w for w in warnings)
    assert not any("model_type" in w for w in warnings)
    assert any("parameter(s) trees reach no step" in w for w in warnings)


def test_bool_and_none_parameters_are_never_reported_unused(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """They cannot be followed through the body (recorded by value), so silence beats a false
    warning."""
    from gristmill import step

    @step
    def echo(flag: bool = False, label: str | None = None) -> str:
        return f"{flag} {label}"

    @pipeline
    def passes(flag: bool = True, label: str | None = None) -> None:
        echo(flag=flag, label=label)

    with caplog.at_level("WARNING", logger="gristmill"):
        passes.compile()
    assert "reach no step" not in caplog.text
    assert passes.graph_parameters() == []


def test_a_bool_parameter_passed_to_a_step_exports_as_a_reference(tmp_path: Path) -> None:
    from gristmill.yaml_pipelines import pipeline_to_document

    document = pipeline_to_document(composed.passes_flag)
    assert document["steps"]["echo_flag"]["parameters"] == {"flag": "${flag}"}
    out = tmp_path / "flag.yaml"
    from gristmill.yaml_pipelines import write_pipeline_yaml

    write_pipeline_yaml(composed.passes_flag, out)
    assert load_pipeline(out)(flag=False).steps["echo_flag"].output().load() == "False"
