"""The local_parallel orchestrator: DAG-aware concurrency, same results and semantics as local."""

import threading
import time
from typing import Any

import pytest

from fixtures.pipelines import splitting
from gristmill import RunFailedError, pipeline, step
from gristmill.errors import ConfigError

WIDTH = 4
barrier = threading.Barrier(WIDTH, timeout=10)


@step
def source() -> int:
    return 1


@step
def wait_for_siblings(x: int, i: int) -> int:
    # Passes only if all WIDTH siblings run at the same time.
    barrier.wait()
    print(f"branch {i}")
    return x + i


@step
def gather(a: int, b: int, c: int, d: int) -> int:
    return a + b + c + d


@pipeline
def fan(width: int = WIDTH) -> None:
    x = source()
    outs = [wait_for_siblings(x, i=i) for i in range(WIDTH)]
    gather(*outs)


def test_independent_steps_run_concurrently() -> None:
    barrier.reset()
    run = fan.with_options(orchestrator="local_parallel", enable_cache=False)()
    assert run.orchestrator == "local_parallel"
    assert run.steps["gather"].output().load() == 4 + 0 + 1 + 2 + 3
    # each thread's prints went to its own step's logs
    for i, name in enumerate(
        ["wait_for_siblings", "wait_for_siblings_2", "wait_for_siblings_3", "wait_for_siblings_4"]
    ):
        assert run.steps[name].logs() == f"branch {i}\n"


@pytest.mark.parametrize("max_workers", [2, 4])
def test_max_workers_is_how_many_steps_run_at_once(max_workers: int) -> None:
    active = peak = 0
    changed = threading.Condition()

    @step
    def busy(i: int) -> int:
        nonlocal active, peak
        with changed:
            active += 1
            peak = max(peak, active)
            changed.notify_all()
            # Wait for max_workers steps to be in at once (a serial run times out at peak 1),
            # then stay a while longer, so a step over the limit would have time to come in.
            changed.wait_for(lambda: active >= max_workers, timeout=2)
            changed.wait(0.1)
            active -= 1
        return i

    @pipeline
    def p() -> None:
        for i in range(4):
            busy(i=i)

    p.with_options(
        orchestrator={"flavor": "local_parallel", "max_workers": max_workers}, enable_cache=False
    )()
    assert peak == max_workers


def test_same_results_as_local() -> None:
    local = splitting.with_options(enable_cache=False)(n=7)
    parallel = splitting.with_options(enable_cache=False, orchestrator="local_parallel")(n=7)
    for name in local.steps:
        assert {k: v.content_hash for k, v in local.steps[name].outputs.items()} == {
            k: v.content_hash for k, v in parallel.steps[name].outputs.items()
        }


def test_failure_stops_dependents_and_lets_other_branches_finish() -> None:
    @step
    def fails() -> int:
        raise RuntimeError("no")

    @step
    def child(x: int) -> int:
        return x

    @step
    def grandchild(x: int) -> int:
        return x

    @step
    def other() -> int:
        time.sleep(0.05)
        return 2

    @pipeline
    def p() -> None:
        grandchild(child(fails()))
        other()

    with pytest.raises(RunFailedError) as caught:
        p.with_options(orchestrator="local_parallel")()
    run: Any = caught.value.run
    assert {n: s.status for n, s in run.steps.items()} == {
        "fails": "failed",
        "child": "stopped",
        "grandchild": "stopped",
        "other": "completed",
    }


@pytest.mark.parametrize("bad", [0, -1, "4", True])
def test_max_workers_is_validated(bad: Any) -> None:
    with pytest.raises(ConfigError, match="setting 'max_workers' must be"):
        splitting.with_options(orchestrator={"flavor": "local_parallel", "max_workers": bad})()


def test_unknown_orchestrator_flavor() -> None:
    with pytest.raises(
        ConfigError,
        match="unknown orchestrator flavor 'local_paralel' — did you mean 'local_parallel'",
    ):
        splitting.with_options(orchestrator="local_paralel")()
