"""ZenML workloads: idiomatic pipelines on the default local stack (SQLite store, local
artifact store, local orchestrator), so every run and every step output is tracked.

    python zenml_workloads.py COMMAND [ARGS]

Timed commands print one result line (workload_common.emit); the driver times the others.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

from workload_common import WARM_STEPS, emit, emit_query_timings
from zenml import pipeline, step
from zenml.client import Client

FANOUT, NAP_SECONDS, QUERY_STEPS = 20, 0.5, 10


@step
def first() -> int:
    return 0


@step
def inc(x: int) -> int:
    return x + 1


@step
def nap(x: int, i: int) -> int:
    time.sleep(NAP_SECONDS)
    return x + i


@step
def join(values: list[int]) -> int:
    return sum(values)


@pipeline
def linear(n: int) -> None:
    x = first()
    for i in range(2, n + 1):
        x = inc(x, id=f"inc_{i}")


@pipeline
def fanout() -> None:
    x = first()
    join([nap(x, i) for i in range(FANOUT)])


@pipeline(dynamic=True)
def fanout_dynamic() -> None:
    """ZenML's dynamic pipelines run `.submit()`-ed steps on a thread pool, even locally."""
    x = first()
    join([nap.submit(x, i) for i in range(FANOUT)])


@pipeline
def ping() -> None:
    first()


def run_linear(n: int, cache: bool = False) -> Any:
    return linear.with_options(enable_cache=cache)(n=n)


def timed(run: Callable[[], Any]) -> float:
    """Seconds for one run after a small warm-up run in the same process."""
    run_linear(WARM_STEPS)
    started = time.perf_counter()
    result = run()
    elapsed = time.perf_counter() - started
    assert result.status == "completed", result.status
    return elapsed


def populate(seconds: float) -> None:
    """Loop a one-step pipeline in one process until the time is up, then one 10-step run
    for get_run and lineage to look at."""
    runner = ping.with_options(enable_cache=False)
    deadline = time.monotonic() + seconds
    runs = 0
    while time.monotonic() < deadline:
        runner()
        runs += 1
    run_linear(QUERY_STEPS)
    emit(runs=runs + 1)


def queries() -> None:
    """Time each read once, after one untimed call (client and store opened)."""
    client = Client()
    ping_id = client.get_pipeline("ping").id
    run_id = (
        client.list_pipeline_runs(pipeline=client.get_pipeline("linear").id, size=1).items[0].id
    )

    def list_latest() -> int:
        runs = client.list_pipeline_runs(pipeline=ping_id, sort_by="desc:created", size=50)
        return len(runs.items)

    def get_run() -> int:
        run = client.get_pipeline_run(run_id)
        uris = [a.uri for s in run.steps.values() for out in s.outputs.values() for a in out]
        return len(uris)

    last = client.get_pipeline_run(run_id).steps[f"inc_{QUERY_STEPS}"].outputs["output"][0]

    def lineage() -> int:
        """From the last step's output back to the first's, through each producer's inputs."""
        artifact, hops = last, 0
        while True:
            producer = client.get_run_step(artifact.producer_step_run_id)
            if not producer.inputs:
                assert producer.name == "first", producer.name
                return hops
            artifact = producer.inputs["x"][0]
            hops += 1

    emit_query_timings({"list_latest_50": list_latest, "get_run": get_run, "lineage": lineage})


def main(command: str, *args: str) -> None:
    if command == "linear":  # one run, caching off: timed from outside as a process
        run_linear(int(args[0]))
    elif command == "linear-timed":
        emit(seconds=timed(lambda: run_linear(int(args[0]))))
    elif command == "cached":  # one run with caching on: timed from outside as a process
        run_linear(QUERY_STEPS, cache=True)
    elif command == "cached-check":
        run = run_linear(QUERY_STEPS, cache=True)
        emit(cached=sum(s.status == "cached" for s in run.steps.values()), steps=len(run.steps))
    elif command == "fanout":
        emit(seconds=timed(fanout.with_options(enable_cache=False)))
    elif command == "fanout-dynamic":
        emit(seconds=timed(fanout_dynamic.with_options(enable_cache=False)))
    elif command == "populate":
        populate(float(args[0]))
    elif command == "queries":
        queries()
    else:
        raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    main(*sys.argv[1:])
