"""ZenML artifact round trips: a prebuilt 100 MB array / 1e6-row DataFrame passed between two
steps through ZenML's own numpy and pandas materializers (Parquet with pyarrow installed).

Kept apart from zenml_workloads.py because ZenML picks materializers from the steps' type
annotations, which makes numpy and pandas module-level imports; the other workloads' process
walls should not pay for them.

    python zenml_artifacts.py numpy|pandas REPEAT
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
from workload_common import consume, dir_bytes, emit, make_data, time_round_trips
from zenml import pipeline, step

KIND = sys.argv[1] if __name__ == "__main__" else "numpy"
DATA = make_data(KIND)


@step
def produce_array() -> np.ndarray:
    return DATA


@step
def use_array(value: np.ndarray) -> float:
    return consume(value)


@step
def produce_frame() -> pd.DataFrame:
    return DATA


@step
def use_frame(value: pd.DataFrame) -> float:
    return consume(value)


@pipeline(enable_cache=False)
def pass_array() -> None:
    use_array(produce_array())


@pipeline(enable_cache=False)
def pass_frame() -> None:
    use_frame(produce_frame())


def main(repeat: int) -> None:
    passing, producer = (
        (pass_array, "produce_array") if KIND == "numpy" else (pass_frame, "produce_frame")
    )
    passing()  # warm: imports, store, first registration of the pipeline
    timings, run = time_round_trips(DATA, Path.cwd() / "raw", repeat, passing)
    stored = run.steps[producer].outputs["output"][0]
    emit(**timings, stored_bytes=dir_bytes(Path(stored.uri)))


if __name__ == "__main__":
    main(int(sys.argv[2]))
