"""The cache key (DESIGN.md §4): exact hits that link outputs, and misses on every change that
can change a result."""

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from fixtures import pipelines as fx
from gristmill import Client, pipeline, step
from gristmill._source import code_hash
from gristmill.testing import write_module

WriteModule = Callable[[str, str], ModuleType]


def statuses(run: Any) -> dict[str, str]:
    return {name: s.status for name, s in run.steps.items()}


def test_second_run_is_cached_and_links_the_same_outputs() -> None:
    fx.CALLS.clear()
    first = fx.summing(n=5)
    second = fx.summing(n=5)
    assert statuses(second) == {"numbers": "cached", "total": "cached"}
    assert fx.CALLS == ["numbers", "total"]  # the functions ran once
    assert second.steps["total"].output().id == first.steps["total"].output().id
    assert second.steps["total"].cached_from == first.steps["total"].id
    assert second.steps["total"].output().load() == 10.0
    assert second.metadata == {"count": 5}  # what the cached step logged comes along


def test_changes_that_miss_the_cache() -> None:
    fx.summing(n=3, scale=1.0)
    # a parameter of the downstream step changes: only it runs again
    assert statuses(fx.summing(n=3, scale=2.0)) == {"numbers": "cached", "total": "completed"}
    # an input's content changes: both run
    assert statuses(fx.summing(n=4, scale=2.0)) == {"numbers": "completed", "total": "completed"}
    # the same input bytes again (n=3 makes the same list): the downstream step hits
    assert statuses(fx.summing(n=3, scale=2.0)) == {"numbers": "cached", "total": "cached"}


def test_cache_switches() -> None:
    fx.summing()
    assert set(statuses(fx.summing.with_options(enable_cache=False)()).values()) == {"completed"}
    per_step = fx.summing.with_options(steps={"total": {"cache": False}})()
    assert statuses(per_step) == {"numbers": "cached", "total": "completed"}

    @step(cache=False)
    def uncached() -> int:
        return 1

    @pipeline
    def p() -> None:
        uncached()

    p()
    assert statuses(p()) == {"uncached": "completed"}

    @pipeline(enable_cache=False)
    def q() -> None:
        fx.numbers()

    q()
    assert statuses(q()) == {"numbers": "completed"}


def test_version_pins_and_result_changing_settings_are_in_the_key() -> None:
    @pipeline
    def p() -> None:
        fx.numbers()

    p()
    assert statuses(p.with_options(steps={"numbers": {"version": "2"}})()) == {
        "numbers": "completed"
    }
    assert statuses(p.with_options(steps={"numbers": {"settings": {"seed": 1}}})()) == {
        "numbers": "completed"
    }
    # infrastructure settings do not change what a step computes
    resources = p.with_options(
        steps={"numbers": {"settings": {"seed": 1, "resources": {"cpu": 4}}}}
    )()
    assert statuses(resources) == {"numbers": "cached"}


def test_a_hit_whose_data_was_deleted_runs_again() -> None:
    import shutil

    first = fx.summing()
    shutil.rmtree(first.steps["total"].output().uri)
    assert statuses(fx.summing()) == {"numbers": "cached", "total": "completed"}
    assert fx.summing().steps["total"].output().load() == 3.0


@pytest.fixture
def user_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[WriteModule]:
    """Writes a module of the user's own into tmp_path and imports it afresh (again after each
    rewrite: see ``write_module``); the modules are forgotten after the test."""
    monkeypatch.syspath_prepend(str(tmp_path))
    written: set[str] = set()

    def write(name: str, source: str) -> ModuleType:
        written.add(name)
        return write_module(tmp_path, name, source)

    yield write
    for name in written:
        sys.modules.pop(name, None)


HELPERS = "def noop(f):\n    return f\n\ndef clean(x):\n    return x + {n}\n"
BASE = """
from gristmill import step
import {helpers}
from {helpers} import noop

SCALE = 2

@step
@noop
def compute(x: int = 1) -> int:
    '''Docstring.'''
    # a comment
    return {helpers}.clean(x) * SCALE
"""


@pytest.mark.parametrize(
    ("change", "same"),
    [
        (lambda s: s.replace("# a comment", "# another comment\n    # more"), True),
        (lambda s: s.replace("'''Docstring.'''", "'''Another docstring.'''"), True),
        (lambda s: s.replace("return", "return  "), True),
        (lambda s: s.replace("@step\n@noop", "@noop\n@step"), True),
        (lambda s: s.replace("* SCALE", "* SCALE + 0"), False),
        (lambda s: s.replace("SCALE = 2", "SCALE = 3"), False),
    ],
)
def test_code_hash_ignores_formatting_but_not_behaviour(
    user_module: WriteModule, change: Any, same: bool
) -> None:
    user_module("helpers_a", HELPERS.format(n=1))
    source = BASE.format(helpers="helpers_a")
    first = code_hash(user_module("stepmod", source).compute)
    after = user_module("stepmod", change(source))
    assert (code_hash(after.compute) == first) is same


def test_code_hash_follows_helpers_in_the_users_own_modules(user_module: WriteModule) -> None:
    user_module("helpers_b", HELPERS.format(n=1))
    stepmod = user_module("stepmod_b", BASE.format(helpers="helpers_b"))
    first = code_hash(stepmod.compute)
    user_module("helpers_b", HELPERS.format(n=1).replace("return x", "# a comment\n    return x"))
    stepmod = user_module("stepmod_b", BASE.format(helpers="helpers_b"))
    assert code_hash(stepmod.compute) == first
    user_module("helpers_b", HELPERS.format(n=2))
    stepmod = user_module("stepmod_b", BASE.format(helpers="helpers_b"))
    assert code_hash(stepmod.compute) != first


LIBRARY_USER = """
{imports}
from gristmill import step

@step
def tidy(text: str = "  x") -> str:
    return json.dumps(dedent(text))
"""


def test_library_code_is_not_hashed(user_module: WriteModule) -> None:
    stdlib = user_module(
        "uses_json", LIBRARY_USER.format(imports="import json\nfrom textwrap import dedent")
    )
    # other standard-library code behind the same names: nothing of it is hashed
    other = "import pickle as json\nfrom inspect import cleandoc as dedent"
    assert code_hash(user_module("uses_pickle", LIBRARY_USER.format(imports=other)).tidy) == (
        code_hash(stdlib.tidy)
    )
    # the same names bound to the user's own code are followed, by attribute and by name
    user_module("own_json", "def dumps(x):\n    return str(x)\n")
    user_module("own_text", "def dedent(text):\n    return text.strip()\n")
    for i, imports in enumerate(
        [
            "import own_json as json\nfrom textwrap import dedent",
            "import json\nfrom own_text import dedent",
        ]
    ):
        own = user_module(f"uses_own_{i}", LIBRARY_USER.format(imports=imports))
        assert code_hash(own.tidy) != code_hash(stdlib.tidy), imports


def test_changed_step_code_misses_the_cache(user_module: WriteModule) -> None:
    user_module("helpers_c", HELPERS.format(n=1))
    stepmod = user_module("stepmod_c", BASE.format(helpers="helpers_c"))

    @pipeline
    def p() -> None:
        stepmod.compute()

    assert p().steps["compute"].output().load() == 4
    assert statuses(p()) == {"compute": "cached"}
    user_module("helpers_c", HELPERS.format(n=10))
    stepmod = user_module("stepmod_c", BASE.format(helpers="helpers_c"))

    @pipeline
    def p2() -> None:
        stepmod.compute()

    run = p2()
    assert statuses(run) == {"compute": "completed"}
    assert run.steps["compute"].output().load() == 22
    assert Client().count_runs() == 3
