"""Errors in YAML files speak the user's words: each names file:line:column, says what is
wrong in the file's terms (step 'train', parameter 'n', the key 'uses') and how a correct
entry looks, and carries none of pydantic's or PyYAML's vocabulary."""

from __future__ import annotations

from pathlib import Path

import pytest

from gristmill.config_file import load_run_config
from gristmill.errors import ConfigError, GristmillError
from gristmill.yaml_pipelines import load_pipeline

JARGON = (
    "Input should be",
    "instance of",
    "<block",
    "<stream",
    "<scalar>",
    "For further information visit",
    "errors.pydantic.dev",
    "validation error",
    "while scanning",
    "while parsing",
    "StepModel",
    "Unexpected keyword argument",
)
STEP = "  load: {uses: 'fixtures.yaml_steps:load'}\n"
STEPS = "steps:\n" + STEP

# (file text, line:column, words the message must contain)
PIPELINES: list[tuple[str, str, tuple[str, ...]]] = [
    # YAML syntax
    (
        "name: x\nsteps:\n  a: {uses: m:f}\n   b: {uses: m:f}\n",
        "4:4",
        ("indentation of this line does not match", "YAML nests by indentation"),
    ),
    (
        "name: x\nsteps:\n    a:\n      uses: m:f\n  b:\n    uses: m:f\n",
        "5:3",
        ("indentation of this line does not match",),
    ),
    ("name: x\nsteps:\n\tload: {uses: m:f}\n", "3:1", ("indented with a tab", "spaces")),
    (
        "name: 'x\nsteps:\n  load: {uses: fixtures.yaml_steps:load}\n",
        "1:7",
        ("quote that opens here is never closed",),
    ),
    ('name: "x\n' + STEPS, "1:7", ("quote that opens here is never closed",)),
    ("name: x\nsteps: [unclosed\n", "2:8", ("'[' that opens here is never closed", "[a, b]")),
    ("name: x\nsteps: {load: 1\n", "2:8", ("'{' that opens here is never closed",)),
    ("name: x: y\n" + STEPS, "1:8", ("needs quotes",)),
    ("name: x\nsteps\n  load: 1\n", "2:1", ("neither `key: value` nor `- item`",)),
    ("name: @x\n" + STEPS, "1:7", ("cannot start with '@'", "quotes")),
    ("name: x\n- load\n", "2:1", ("list item '- ...' beside keys of a mapping",)),
    ("name: x\nname: y\n" + STEPS, "2:1", ("the key 'name' appears twice", "first on line 1")),
    (
        "name: x\nsteps:\n  load: {uses: 'a:b', uses: 'c:d'}\n",
        "3:23",
        ("the key 'uses' appears twice",),
    ),
    # shapes and values
    (
        "name: x\nsteps:\n  train: 'fixtures.yaml_steps:load'\n",
        "3:10",
        ("step 'train' must be a mapping like `train: {uses: myproject.steps:train}`",),
    ),
    ("name: x\nsteps:\n  train:\n", "3:9", ("step 'train' must be a mapping", "empty")),
    (
        "name: x\nsteps: [load]\n",
        "2:8",
        ("'steps' must be a mapping like `steps: {train: {uses:", "not a list"),
    ),
    ("name: x\nsteps: {}\n", "2:8", ("'steps' needs at least 1 item",)),
    ("name: x\n", "1:1", ("the file is missing the key 'steps'", "add `steps:")),
    (STEPS, "1:1", ("the file is missing the key 'name'", "add `name:")),
    (
        "name: x\nsteps:\n  load: {inputs: {}}\n",
        "3:9",
        ("step 'load' is missing the key 'uses'", "add `uses: myproject.steps:train`"),
    ),
    (
        "name: x\nstpes: {}\n" + STEPS,
        "2:1",
        ("unknown key 'stpes'", "did you mean 'steps'?"),
    ),
    (
        "name: bad name\n" + STEPS,
        "1:7",
        ("'name' must look like a name of letters", "not 'bad name'"),
    ),
    (
        "name: x\nsteps:\n  load: {uses: fixtures.yaml_steps.load}\n",
        "3:16",
        ("'uses' of step 'load' must look like 'package.module:function'",),
    ),
    (
        "name: x\nsteps:\n  load: {uses: 'fixtures.yaml_steps:load', settings: {cache: maybe}}\n",
        "3:62",
        ("'settings.cache' of step 'load' must be true or false, not 'maybe'",),
    ),
    (
        "name: x\nsteps:\n  load: {uses: 'fixtures.yaml_steps:load', settings: {retries: many}}\n",
        "3:64",
        ("'settings.retries' of step 'load' must be", "a whole number", "count, delay, backoff"),
    ),
    (
        "name: x\nsteps:\n  load: {uses: 'fixtures.yaml_steps:load', after: 3}\n",
        "3:51",
        ("'after' of step 'load' must be", "text", "not 3"),
    ),
    (
        "name: x\nparameters:\n  n: {type: integer, default: 3}\n" + STEPS,
        "3:13",
        ("'type' of parameter 'n' must be one of 'int'", "did you mean 'int'?"),
    ),
]

CONFIGS: list[tuple[str, str, tuple[str, ...]]] = [
    ("enable_cache: sometimes\n", "1:15", ("'enable_cache' must be true or false",)),
    ("tags: nightly\n", "1:7", ("'tags' must be a list, like [a, b]", "not 'nightly'")),
    ("parameters: [1]\n", "1:13", ("'parameters' must be a mapping",)),
    ("steps:\n  load: 3\n", "2:9", ("step 'load' must be a mapping like `load: {",)),
    (
        "steps:\n  load: {retries: 1.5}\n",
        "2:19",
        ("'retries' of step 'load' must be", "a whole number", "not 1.5"),
    ),
    (
        "steps:\n  load: {retries: {count: 1, wait: 2}}\n",
        "2:30",
        ("unknown key 'wait' in steps.load.retries", "'count'"),
    ),
    ("paramters: {n: 3}\n", "1:1", ("unknown key 'paramters'", "did you mean 'parameters'?")),
    ("steps:\n  load: {cache: false\n", "2:9", ("'{' that opens here is never closed",)),
    ("tags:\n  - a\n - b\n", "3:2", ("indentation of this line does not match",)),
]


def _check(error: str, path: Path, where: str, words: tuple[str, ...]) -> None:
    assert f"{path}:{where}:" in error, error
    for word in words:
        assert word in error, f"{word!r} not in {error!r}"
    for jargon in JARGON:
        assert jargon not in error, f"{jargon!r} in {error!r}"


@pytest.mark.parametrize(
    ("text", "where", "words"), PIPELINES, ids=[p[2][0][:40] for p in PIPELINES]
)
def test_pipeline_file_errors(
    tmp_path: Path, text: str, where: str, words: tuple[str, ...]
) -> None:
    path = tmp_path / "pipeline.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(GristmillError) as caught:
        load_pipeline(path)
    _check(str(caught.value), path, where, words)


@pytest.mark.parametrize(("text", "where", "words"), CONFIGS, ids=[c[2][0][:40] for c in CONFIGS])
def test_run_configuration_errors(
    tmp_path: Path, text: str, where: str, words: tuple[str, ...]
) -> None:
    path = tmp_path / "run.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_run_config(path)
    _check(str(caught.value), path, where, words)


def test_several_problems_are_one_line_each(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("enable_cache: sometimes\ntags: nightly\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_run_config(path)
    lines = str(caught.value).splitlines()
    assert [line.split(": ", 1)[0] for line in lines] == [f"{path}:1:15", f"{path}:2:7"]
