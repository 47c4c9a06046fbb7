"""YAML pipelines: equivalent to Python ones (same spec hash, same cache hits), round-trip
through export, and every malformed file explained with file:line:column."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from fixtures import yaml_steps
from gristmill import Resources
from gristmill.errors import ConfigError, GristmillError
from gristmill.yaml_pipelines import (
    load_pipeline,
    pipeline_schema,
    pipeline_to_document,
    pipeline_to_yaml,
)

QUICKSTART = Path(__file__).parents[2] / "examples" / "quickstart"


def write(tmp_path: Path, text: str, name: str = "pipeline.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def test_quickstart_yaml_and_python_are_the_same_pipeline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(QUICKSTART))
    for name in ("steps", "pipeline"):
        sys.modules.pop(name, None)
    from pipeline import training  # type: ignore[import-not-found]

    yaml_pipeline = load_pipeline(QUICKSTART / "pipeline.yaml")
    assert yaml_pipeline.spec().hash == training.spec().hash
    assert yaml_pipeline.spec().canonical() == training.spec().canonical()


def test_yaml_and_python_share_cache_hits() -> None:
    first = yaml_steps.simple(n=5)
    yaml_text = pipeline_to_yaml(yaml_steps.simple)
    path = Path(first.artifact_store.root).parent / "simple.yaml"
    path.write_text(yaml_text)
    second = load_pipeline(path)(n=5)
    assert {s.status for s in second.steps.values()} == {"cached"}
    assert second.steps["combine"].output().id == first.steps["combine"].output().id
    assert second.spec_hash == first.spec_hash


def test_export_then_load_round_trips_every_feature(tmp_path: Path) -> None:
    python_spec = yaml_steps.everything.spec()
    document = pipeline_to_document(yaml_steps.everything)
    path = write(tmp_path, pipeline_to_yaml(yaml_steps.everything))
    loaded = load_pipeline(path)
    assert loaded.spec().hash == python_spec.hash
    assert loaded.spec().canonical() == python_spec.canonical()
    # exporting the loaded pipeline gives the same document
    assert pipeline_to_document(loaded) == document
    # and the features are all there
    assert document["description"] == "A pipeline with every feature of the YAML format."
    assert document["settings"] == {"enable_cache": False}
    assert document["parameters"] == {"n": 4, "weight": 0.5, "label": "run", "required_flag": True}
    steps = document["steps"]
    assert steps["load"] == {
        "uses": "fixtures.yaml_steps:load",
        "parameters": {"n": "${n}", "label": "$${literal}"},
    }
    assert steps["split"]["inputs"] == {"xs": "load"}
    assert "settings" not in steps["split"]  # its own decorator options need no repeating
    assert steps["combine"]["inputs"] == {"a": "split.evens", "b": "split.odds"}
    assert steps["combine"]["settings"] == {
        "cache": False,
        "retries": {"count": 2, "delay": 0.1, "backoff": 2},
        "on_success": "fixtures.yaml_steps:celebrate",
        "on_failure": "fixtures.yaml_steps:notify",
        "enable_logs": False,
        "version": "7",
        "resources": {"cpu": 2, "memory": "1Gi"},
        "step_operator": "gpu",
        "seed": 3,
    }
    assert steps["report"]["after"] == ["warmup"]
    assert steps["warmup"]["parameters"] == {"n": 2}


def test_long_form_parameters_and_stack(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        name: scheduled
        parameters:
          n: {type: int, default: 3, description: how many}
          ratio: {type: float, required: true}
          options: {a: 1}
        stack: default
        steps:
          load: {uses: "fixtures.yaml_steps:load", parameters: {n: "${n}"}}
        """,
    )
    loaded = load_pipeline(path)
    spec = loaded.spec()
    assert spec.parameters["n"].type == "int"
    assert spec.parameters["ratio"].required
    assert spec.parameters["options"].default == {"a": 1}
    assert loaded.stack_name == "default"
    document = pipeline_to_document(loaded)
    assert document["parameters"]["ratio"] == {"type": "float", "required": True}
    run = loaded(ratio=0.5)
    assert run.steps["load"].output().load() == [0, 1, 2]


def test_environment_interpolation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GM_LABEL", "from-env")
    path = write(
        tmp_path,
        """
        name: env
        steps:
          load:
            uses: fixtures.yaml_steps:load
            parameters: {label: "${env:GM_LABEL}", n: 2}
          other:
            uses: fixtures.yaml_steps:load
            parameters: {label: "${env:GM_UNSET_VARIABLE:-fallback}"}
        """,
    )
    plan = load_pipeline(path).compile()
    assert plan.steps["load"].parameters["label"] == "from-env"
    assert plan.steps["other"].parameters["label"] == "fallback"


def test_run_a_yaml_pipeline_like_any_pipeline(tmp_path: Path) -> None:
    path = write(tmp_path, pipeline_to_yaml(yaml_steps.simple))
    run = load_pipeline(path).with_options(enable_cache=False)(n=6)
    assert run.steps["combine"].output().load() == 15.0
    with pytest.raises(GristmillError, match="pass parameters by name"):
        load_pipeline(path)(6)


def test_published_schema_accepts_the_examples() -> None:
    import jsonschema
    import yaml

    schema = pipeline_schema()
    validator = jsonschema.Draft202012Validator(schema)
    for path in (QUICKSTART / "pipeline.yaml",):
        assert list(validator.iter_errors(yaml.safe_load(path.read_text()))) == []
    assert list(validator.iter_errors({"name": "x", "steps": {}, "bogus": 1}))
    json.dumps(schema)


VALID_STEPS = """
steps:
  load: {uses: "fixtures.yaml_steps:load"}
  split: {uses: "fixtures.yaml_steps:split", inputs: {xs: load}}
  combine: {uses: "fixtures.yaml_steps:combine", inputs: {a: split.evens, b: split.odds}}
"""

MALFORMED: list[tuple[str, str, str]] = [
    ("name: x\nsteps: [unclosed\n", "pipeline.yaml:2:8", "'[' that opens here is never closed"),
    ("name: x\nname: y\n" + VALID_STEPS, "pipeline.yaml:2:1", "the key 'name' appears twice"),
    (VALID_STEPS, "pipeline.yaml:1:1", "the file is missing the key 'name'"),
    ("name: x\n", "pipeline.yaml:1:1", "the file is missing the key 'steps'"),
    ("name: x\nsteps: {}\n", "pipeline.yaml:2:8", "'steps' needs at least 1 item"),
    (
        "name: x\nstpes: {}\n" + VALID_STEPS,
        "pipeline.yaml:2:1",
        "unknown key 'stpes' in the document — did you mean 'steps'?",
    ),
    (
        "name: x\nsteps:\n  load: {uess: 'fixtures.yaml_steps:load'}\n",
        "pipeline.yaml:3:10",
        "unknown key 'uess' in steps.load — did you mean 'uses'?",
    ),
    (
        "name: x\nsteps:\n  load: {uses: fixtures.yaml_steps.load}\n",
        "pipeline.yaml:3:16",
        "must look like 'package.module:function'",
    ),
    (
        "name: x\nsteps:\n  load: {uses: 'nosuchmodule:load'}\n",
        "pipeline.yaml:3:16",
        "cannot import module 'nosuchmodule'",
    ),
    (
        "name: x\nsteps:\n  load: {uses: 'fixtures.yaml_steps:lod'}\n",
        "pipeline.yaml:3:16",
        "has no 'lod' — did you mean 'load'?",
    ),
    (
        "name: x" + VALID_STEPS.replace("inputs: {xs: load}", "inputs: {xs: laod}"),
        "pipeline.yaml:4:59",
        "unknown step 'laod' — did you mean 'load'?",
    ),
    (
        "name: x" + VALID_STEPS.replace("split.evens", "split.evnes"),
        "pipeline.yaml:5:62",
        "step 'split' has no output 'evnes' — did you mean 'evens'?",
    ),
    (
        "name: x" + VALID_STEPS.replace("split.evens", "split"),
        "pipeline.yaml:5:62",
        "step 'split' has 2 outputs (evens, odds); name one",
    ),
    (
        "name: x" + VALID_STEPS.replace("inputs: {xs: load}", "inputs: {x: load}"),
        "pipeline.yaml:4:55",
        "has no argument 'x' — did you mean 'xs'?",
    ),
    (
        "name: x\nsteps:\n  load: {uses: 'fixtures.yaml_steps:load', parameters: {nn: 3}}\n",
        "pipeline.yaml:3:57",
        "has no parameter 'nn' — did you mean 'n'?",
    ),
    (
        "name: x\nsteps:\n  load: {uses: 'fixtures.yaml_steps:load', parameters: {n: '${count}'}}\n",
        "pipeline.yaml:3:60",
        "'${count}' is not a pipeline parameter",
    ),
    (
        "name: x\nsteps:\n  load: {uses: 'fixtures.yaml_steps:load', parameters: {label: '${env:GM_NOT_SET_ANYWHERE}'}}\n",
        "pipeline.yaml:3:64",
        "environment variable GM_NOT_SET_ANYWHERE is not set",
    ),
    (
        "name: x\nsteps:\n  load: {uses: 'fixtures.yaml_steps:load', after: [lod]}\n",
        "pipeline.yaml:3:52",
        "'after' names unknown step 'lod'",
    ),
    (
        "name: x\nsteps:\n  a: {uses: 'fixtures.yaml_steps:load', after: b}\n  b: {uses: 'fixtures.yaml_steps:load', after: a}\n",
        "pipeline.yaml:3:6",
        "cycle: a -> b -> a",
    ),
    (
        "name: x\nsteps:\n  load: {uses: 'fixtures.yaml_steps:load', settings: {retries: -1}}\n",
        "pipeline.yaml:3:54",
        "retries must be a number >= 0",
    ),
    (
        "name: x\nsteps:\n  load: {uses: 'fixtures.yaml_steps:load', settings: {cache: maybe}}\n",
        "pipeline.yaml:3:62",
        "must be true or false",
    ),
    (
        "name: x\nschedule: '0 3 * * *'\n" + VALID_STEPS,
        "pipeline.yaml:2:1",
        "'schedule:' is not supported yet",
    ),
    (
        "name: x\nparameters:\n  n: {type: int, default: many}\n" + VALID_STEPS,
        "pipeline.yaml:3:6",
        "must be int, got 'many'",
    ),
    ("name: bad name\n" + VALID_STEPS, "pipeline.yaml:1:7", "'name' must look like a name"),
    ("- just\n- a list\n", "pipeline.yaml:1:1", "a pipeline file is a mapping"),
    (
        "name: x\nsteps:\n  load: {uses: 'fixtures.yaml_steps:load', parameters: {n: 'three'}}\n",
        "pipeline.yaml:3:9",
        "parameter 'n' must be int, got 'three'",
    ),
]


@pytest.mark.parametrize(
    ("text", "where", "message"), MALFORMED, ids=[m[2][:40] for m in MALFORMED]
)
def test_malformed_pipeline_files(tmp_path: Path, text: str, where: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises((ConfigError, GristmillError)) as caught:
        load_pipeline(path).compile()
    error = str(caught.value)
    assert message in error
    assert f"{tmp_path / where}" in error


CONFIGS: list[tuple[str, str, str]] = [
    (
        "paramters: {n: 3}\n",
        "run.yaml:1:1",
        "unknown key 'paramters' in the document — did you mean 'parameters'?",
    ),
    (
        "steps:\n  load: {cahce: false}\n",
        "run.yaml:2:10",
        "unknown key 'cahce' in steps.load — did you mean 'cache'?",
    ),
    ("tags: nightly\n", "run.yaml:1:7", "'tags' must be a list"),
    (
        "steps:\n  lod: {cache: false}\n",
        "",
        "settings for step 'lod', which pipeline 'simple' does not have — did you mean 'load'?",
    ),
    ("parameters: {n: many}\n", "", "parameter 'n' must be int, got 'many'"),
    ("parameters: {m: 3}\n", "", "has no parameter 'm' (valid: 'n')"),
    (
        "steps:\n  load: {retries: {count: 1, wait: 2}}\n",
        "run.yaml:2:30",
        "unknown key 'wait' in steps.load.retries (valid: 'backoff', 'count', 'delay')",
    ),
    ("enable_cache: sometimes\n", "run.yaml:1:15", "'enable_cache' must be true or false"),
]


@pytest.mark.parametrize(("text", "where", "message"), CONFIGS, ids=[c[2][:40] for c in CONFIGS])
def test_malformed_run_configurations(tmp_path: Path, text: str, where: str, message: str) -> None:
    path = write(tmp_path, text, "run.yaml")
    with pytest.raises(GristmillError) as caught:
        yaml_steps.simple.with_options(config=path).compile()
    error = str(caught.value)
    assert message in error
    if where:
        assert f"{tmp_path / where}" in error


def test_run_configuration_precedence(tmp_path: Path) -> None:
    config = write(
        tmp_path,
        """
        parameters: {n: 10}
        enable_cache: false
        run_name: "from-config-{id}"
        tags: [config]
        steps:
          combine: {parameters: {weight: 2.0}, retries: 3, settings: {resources: {cpu: 8}}}
        """,
        "run.yaml",
    )
    pipeline = yaml_steps.simple.with_options(config=config, tags=["call"])
    plan = pipeline.compile(n=6)  # call arguments beat the file
    assert plan.parameters == {"n": 6}
    assert plan.run_name.startswith("from-config-")
    assert plan.config.tags == ["config", "call"]
    assert plan.steps["combine"].parameters["weight"] == 2.0
    assert plan.steps["combine"].retries.count == 3
    assert plan.steps["combine"].options.resources == Resources(cpu=8)  # an option now
    assert plan.steps["combine"].cache is False
    run = pipeline(n=6)
    stored: dict[str, Any] = run.config
    assert stored["steps"]["combine"]["parameters"] == {"weight": 2.0}
    assert stored["resolved_parameters"] == {"n": 6}
