"""Prefect 3 workloads: flows and tasks as Prefect's docs write them, tracked by the default
local setup (no PREFECT_API_URL: each process starts Prefect's temporary local server on its
SQLite database) with result persistence on.

Prefect only persists a task's result when it has a storage key, which its caching provides;
with caching off the tasks get ``result_storage_key="{task_run.id}"`` so every output is still
written to the local result storage, as the other tools do.

    python prefect_workloads.py COMMAND [ARGS]

Timed commands print one result line (workload_common.emit); the driver times the others.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prefect import flow, get_client, task, unmapped
from prefect.cache_policies import INPUTS, TASK_SOURCE
from workload_common import (
    WARM_STEPS,
    consume,
    emit,
    emit_query_timings,
    make_data,
    time_round_trips,
)

FANOUT, NAP_SECONDS, QUERY_STEPS = 20, 0.5, 10
PERSISTED = "{task_run.id}"
CACHED = INPUTS + TASK_SOURCE
DATA: Any = None  # the prebuilt array or frame the producer returns (artifact command)


@task(result_storage_key=PERSISTED)
def first() -> int:
    return 0


@task(result_storage_key=PERSISTED)
def inc(x: int) -> int:
    return x + 1


@task(cache_policy=CACHED)
def first_cached() -> int:
    return 0


@task(cache_policy=CACHED)
def inc_cached(x: int) -> int:
    return x + 1


@task(result_storage_key=PERSISTED)
def nap(x: int, i: int) -> int:
    time.sleep(NAP_SECONDS)
    return x + i


@task(result_storage_key=PERSISTED)
def join(values: list[int]) -> int:
    return sum(values)


@task(result_storage_key=PERSISTED)
def produce() -> Any:
    return DATA


@task(result_storage_key=PERSISTED)
def use(value: Any) -> float:
    return consume(value)


@flow
def linear(n: int, cache: bool = False) -> int:
    start, step = (first_cached, inc_cached) if cache else (first, inc)
    x = start()
    for _ in range(n - 1):
        x = step(x)
    return x


@flow
def chain(n: int) -> int:
    """The run get_run and lineage read. Prefect records a task run's upstream task runs only
    for futures (a plain small int returned by a direct call is not tracked), so this passes
    futures along."""
    x = first.submit()
    for _ in range(n - 1):
        x = inc.submit(x)
    return x.result()


@flow
def fanout() -> int:
    """The default task runner is a thread pool with no worker limit."""
    x = first()
    return join(nap.map(unmapped(x), range(FANOUT)))


@flow
def passing() -> float:
    return use(produce())


@task(result_storage_key=PERSISTED)
async def first_async() -> int:
    return 0


@flow
async def ping() -> int:
    """Async because a sync flow run ends by joining its heartbeat thread (up to ~1 s) and an
    async one does not: three times the runs in the same time."""
    return await first_async()


def timed(run: Callable[[], Any]) -> float:
    """Seconds for one flow run after a small warm-up run (server up, flow registered)."""
    linear(WARM_STEPS)
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def linear_timed(n: int) -> None:
    """As timed(), plus Prefect's own record of the run's time in Running (the flow body and
    its tasks' result writes, without the flow run's setup and teardown)."""
    linear(WARM_STEPS)
    started = time.perf_counter()
    state = linear(n, return_state=True)
    elapsed = time.perf_counter() - started
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(state.state_details.flow_run_id)
    emit(seconds=elapsed, run_time=run.total_run_time.total_seconds())


def storage_files() -> dict[str, int]:
    from prefect.settings import get_current_settings

    folder = Path(get_current_settings().results.local_storage_path)
    return {f.name: f.stat().st_size for f in folder.iterdir()} if folder.exists() else {}


def artifact(kind: str, repeat: int) -> None:
    global DATA
    DATA = make_data(kind)
    passing()  # warm: server up, flow registered
    before = storage_files()
    timings, _ = time_round_trips(DATA, Path.cwd() / "raw", repeat, passing)
    # The producer's persisted result is the largest file the last run wrote.
    new = [size for name, size in storage_files().items() if name not in before]
    emit(**timings, stored_bytes=max(new) if new else None)


def cached_check() -> None:
    """How many of the 10 task runs of a re-run came from the cache."""
    state = linear(QUERY_STEPS, cache=True, return_state=True)
    with get_client(sync_client=True) as client:
        from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(
                id=FlowRunFilterId(any_=[state.state_details.flow_run_id])
            )
        )
    emit(cached=sum(r.state_name == "Cached" for r in runs), steps=len(runs))


def populate(seconds: float) -> None:
    """Loop a one-task flow in one process until the time is up, then one 10-step chain for
    get_run and lineage to look at."""

    async def loop() -> int:
        deadline = time.monotonic() + seconds
        runs = 0
        while time.monotonic() < deadline:
            await ping()
            runs += 1
        return runs

    runs = asyncio.run(loop())
    chain(QUERY_STEPS)
    emit(runs=runs + 1)


def queries() -> None:
    """Time each read once, after one untimed call (temporary server up, client open)."""
    from prefect.client.schemas.filters import (
        FlowFilter,
        FlowFilterName,
        FlowRunFilter,
        FlowRunFilterId,
    )
    from prefect.client.schemas.sorting import FlowRunSort

    with get_client(sync_client=True) as client:

        def runs_of(name: str, limit: int) -> list[Any]:
            return client.read_flow_runs(
                flow_filter=FlowFilter(name=FlowFilterName(any_=[name])),
                sort=FlowRunSort.START_TIME_DESC,
                limit=limit,
            )

        run_id = runs_of("chain", 1)[0].id

        def get_run() -> int:
            client.read_flow_run(run_id)
            tasks = client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id]))
            )
            return sum(t.state is not None and t.state.data is not None for t in tasks)

        tasks = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id]))
        )
        upstream = {i.id for t in tasks for inputs in t.task_inputs.values() for i in inputs}
        (last,) = [t.id for t in tasks if t.id not in upstream]

        def lineage() -> int:
            """Task-run lineage: Prefect records which task run produced each input."""
            task_run, hops = client.read_task_run(last), 0
            while task_run.task_inputs.get("x"):
                task_run = client.read_task_run(task_run.task_inputs["x"][0].id)
                hops += 1
            return hops

        emit_query_timings(
            {
                "list_latest_50": lambda: len(runs_of("ping", 50)),
                "get_run": get_run,
                "lineage": lineage,
            }
        )


def main(command: str, *args: str) -> None:
    if command == "linear":  # one run, caching off: timed from outside as a process
        linear(int(args[0]))
    elif command == "linear-timed":
        linear_timed(int(args[0]))
    elif command == "cached":  # one run with caching on: timed from outside as a process
        linear(QUERY_STEPS, cache=True)
    elif command == "cached-check":
        cached_check()
    elif command == "fanout":
        emit(seconds=timed(fanout))
    elif command == "artifact":
        artifact(args[0], int(args[1]))
    elif command == "populate":
        populate(float(args[0]))
    elif command == "queries":
        queries()
    else:
        raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    main(*sys.argv[1:])
