"""Kedro workloads, in-process: the project's pipelines run by Kedro's runners on an empty
DataCatalog (every dataset in memory). Kedro tracks nothing: no run store, no step cache, no
persisted outputs. The driver times `kedro run --pipeline ...` separately for process walls.

    python kedro_workloads.py COMMAND [ARGS]
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kedro.framework.startup import bootstrap_project
from kedro.io import DataCatalog
from kedro.pipeline import Pipeline, node, pipeline
from kedro.runner import SequentialRunner, ThreadRunner
from workload_common import WARM_STEPS, consume, emit, make_data, time_round_trips

bootstrap_project(Path.cwd())  # puts src/ on sys.path and reads the project's settings

from peer_bench.pipelines import fanout, linear  # noqa: E402


def timed(run: Callable[[], Any]) -> float:
    """Seconds for one run after a small warm-up run in the same process."""
    SequentialRunner().run(linear(WARM_STEPS), DataCatalog())
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def artifact(kind: str, repeat: int) -> None:
    """Producer returns the prebuilt object; Kedro hands it over through a MemoryDataset."""
    data = make_data(kind)
    passing = pipeline(
        [
            node(lambda: data, inputs=None, outputs="data", name="produce"),
            node(consume, inputs="data", outputs="total", name="use"),
        ]
    )

    def run() -> Any:
        return SequentialRunner().run(passing, DataCatalog())

    run()
    timings, _ = time_round_trips(data, Path.cwd() / "raw", repeat, run)
    emit(**timings, stored_bytes=0)


def main(command: str, *args: str) -> None:
    if command == "linear-timed":
        chain: Pipeline = linear(int(args[0]))
        emit(seconds=timed(lambda: SequentialRunner().run(chain, DataCatalog())))
    elif command == "fanout":  # as many threads as branches, as the other tools get
        emit(seconds=timed(lambda: ThreadRunner(max_workers=20).run(fanout(), DataCatalog())))
    elif command == "fanout-default":  # ThreadRunner's default: os.cpu_count() threads
        emit(seconds=timed(lambda: ThreadRunner().run(fanout(), DataCatalog())))
    elif command == "artifact":
        artifact(args[0], int(args[1]))
    else:
        raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    main(*sys.argv[1:])
