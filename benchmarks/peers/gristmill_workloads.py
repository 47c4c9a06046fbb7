"""gristmill workloads for the side-by-side benchmark, written as a user would: typed steps,
the default local stack (SQLite store, local artifact store), everything tracked.

    python gristmill_workloads.py COMMAND [ARGS]

Same commands and result lines as the peers' scripts (workload_common.emit); the driver times
the others. ``populate`` makes real runs (a one-step pipeline in a loop), up to 10,000.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from workload_common import (
    WARM_STEPS,
    consume,
    dir_bytes,
    emit,
    emit_query_timings,
    make_data,
    time_round_trips,
)

from gristmill import Client, pipeline, step

FANOUT, NAP_SECONDS, QUERY_STEPS, TARGET_RUNS = 20, 0.5, 10, 10_000
DATA: Any = None  # the prebuilt array or frame the producer returns (artifact command)


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


@step
def produce() -> Annotated[Any, "data"]:
    return DATA


@step
def use(value: Any) -> float:
    return consume(value)


def linear(n: int) -> Any:
    @pipeline(name=f"linear{n}")
    def chain() -> None:
        x = first()
        for _ in range(n - 1):
            x = inc(x)

    return chain


@step
def collect(
    a: int,
    b: int,
    c: int,
    d: int,
    e: int,
    f: int,
    g: int,
    h: int,
    i: int,
    j: int,
    k: int,
    l: int,  # noqa: E741
    m: int,
    n: int,
    o: int,
    p: int,
    q: int,
    r: int,
    s: int,
    t: int,
) -> int:
    return a + b + c + d + e + f + g + h + i + j + k + l + m + n + o + p + q + r + s + t


@pipeline
def fanout() -> None:
    x = first()
    collect(*[nap(x, i=i) for i in range(FANOUT)])


@pipeline
def ping() -> None:
    first()


@pipeline
def passing() -> None:
    use(produce())


def run_linear(n: int, cache: bool = False) -> Any:
    return linear(n).with_options(enable_cache=cache)()


def timed(run: Callable[[], Any]) -> float:
    """Seconds for one run after a small warm-up run in the same process."""
    run_linear(WARM_STEPS)
    started = time.perf_counter()
    result = run()
    elapsed = time.perf_counter() - started
    assert result.status == "completed", result.status
    return elapsed


def populate(seconds: float) -> None:
    runner = ping.with_options(enable_cache=False)
    deadline = time.monotonic() + seconds
    runs = 0
    while time.monotonic() < deadline and runs < TARGET_RUNS - 1:
        runner()
        runs += 1
    run_linear(QUERY_STEPS)
    emit(runs=runs + 1)


def queries() -> None:
    client = Client()
    run_id = client.list_runs(pipeline=f"linear{QUERY_STEPS}", limit=1)[0].id

    def list_latest() -> int:
        return len([r.name for r in client.list_runs(pipeline="ping", limit=50)])

    def get_run() -> int:
        run = client.get_run(run_id)
        return len([a.uri for s in run.steps.values() for a in s.outputs.values()])

    last = client.get_run(run_id).steps[f"inc_{QUERY_STEPS - 1}"].output().id

    def lineage() -> int:
        return len(client.upstream(last))

    emit_query_timings({"list_latest_50": list_latest, "get_run": get_run, "lineage": lineage})


def artifact(kind: str, repeat: int) -> None:
    global DATA
    DATA = make_data(kind)
    runner = passing.with_options(enable_cache=False)
    runner()  # warm: imports, store
    timings, run = time_round_trips(DATA, Path.cwd() / "raw", repeat, runner)
    emit(**timings, stored_bytes=dir_bytes(Path(run.steps["produce"].output().uri)))


def main(command: str, *args: str) -> None:
    if command == "linear":
        run_linear(int(args[0]))
    elif command == "linear-timed":
        emit(seconds=timed(lambda: run_linear(int(args[0]))))
    elif command == "cached":
        run_linear(QUERY_STEPS, cache=True)
    elif command == "cached-check":
        run = run_linear(QUERY_STEPS, cache=True)
        emit(cached=sum(s.status == "cached" for s in run.steps.values()), steps=len(run.steps))
    elif command == "fanout":
        emit(seconds=timed(fanout.with_options(enable_cache=False, orchestrator="local_parallel")))
    elif command == "populate":
        populate(float(args[0]))
    elif command == "queries":
        queries()
    elif command == "artifact":
        artifact(args[0], int(args[1]))
    else:
        raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    main(*sys.argv[1:])
