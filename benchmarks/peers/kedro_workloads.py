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


def artifact(kind: str, repeat: int, stored: bool) -> None:
    """Producer returns the prebuilt object; Kedro hands it over through a MemoryDataset (its
    default: nothing stored), or, with ``stored``, through the dataset a Kedro user declares in
    the catalog to keep it: pandas.ParquetDataset for a DataFrame, pickle.PickleDataset for an
    array (kedro-datasets has no numpy dataset)."""
    data = make_data(kind)
    passing = pipeline(
        [
            node(lambda: data, inputs=None, outputs="data", name="produce"),
            node(consume, inputs="data", outputs="total", name="use"),
        ]
    )
    target = Path.cwd() / "data" / ("data.parquet" if kind == "pandas" else "data.pkl")

    def catalog() -> DataCatalog:
        if not stored:
            return DataCatalog()
        if kind == "pandas":
            from kedro_datasets.pandas import ParquetDataset

            return DataCatalog({"data": ParquetDataset(filepath=str(target))})
        from kedro_datasets.pickle import PickleDataset

        return DataCatalog({"data": PickleDataset(filepath=str(target))})

    def run() -> Any:
        return SequentialRunner().run(passing, catalog())

    run()
    timings, _ = time_round_trips(data, Path.cwd() / "raw", repeat, run)
    emit(**timings, stored_bytes=target.stat().st_size if stored else 0)


def main(command: str, *args: str) -> None:
    if command == "linear-timed":
        chain: Pipeline = linear(int(args[0]))
        emit(seconds=timed(lambda: SequentialRunner().run(chain, DataCatalog())))
    elif command == "fanout":  # as many threads as branches, as the other tools get
        emit(seconds=timed(lambda: ThreadRunner(max_workers=20).run(fanout(), DataCatalog())))
    elif command == "fanout-default":  # ThreadRunner's default: os.cpu_count() threads
        emit(seconds=timed(lambda: ThreadRunner().run(fanout(), DataCatalog())))
    elif command in ("artifact", "artifact-stored"):
        artifact(args[0], int(args[1]), stored=command == "artifact-stored")
    else:
        raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    main(*sys.argv[1:])
