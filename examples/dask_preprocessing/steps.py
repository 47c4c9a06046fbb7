"""A Dask DataFrame preprocessing step. The frame it returns is stored as partitioned Parquet
(one file per partition) and arrives at the next step lazily, still partitioned: nothing is
computed until that step asks."""

from __future__ import annotations

import logging
from typing import Annotated

import dask.dataframe as dd
import numpy as np
import pandas as pd

from gristmill import log_metadata, step

logger = logging.getLogger(__name__)


@step
def generate(rows: int = 20_000, seed: int = 0) -> Annotated[pd.DataFrame, "readings"]:
    """Sensor readings with gaps and outliers, as raw data arrives."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "sensor": rng.choice(["north", "south", "east", "west"], rows),
            "temperature": rng.normal(20, 5, rows),
            "humidity": rng.uniform(0, 100, rows),
        }
    )
    frame.loc[rng.choice(rows, rows // 50, replace=False), "temperature"] = np.nan
    frame.loc[rng.choice(rows, rows // 100, replace=False), "humidity"] = 900.0
    return frame


@step
def preprocess(
    readings: pd.DataFrame, partitions: int = 4, max_humidity: float = 100.0
) -> Annotated[dd.DataFrame, "clean"]:
    """Dask drops gaps and impossible values and derives a feature, partition by partition."""
    frame = dd.from_pandas(readings, npartitions=partitions)
    frame = frame.dropna(subset=["temperature"])
    frame = frame[frame.humidity <= max_humidity]
    frame = frame.assign(heat_index=frame.temperature + 0.05 * frame.humidity)
    return frame


@step
def summarize(clean: dd.DataFrame) -> Annotated[pd.DataFrame, "summary"]:
    """One aggregate per sensor: the only place the data is computed."""
    summary = (
        clean.groupby("sensor")
        .agg({"temperature": "mean", "heat_index": "max", "humidity": "count"})
        .compute()
        .rename(columns={"humidity": "readings"})
        .sort_index()
    )
    log_metadata({"partitions": clean.npartitions, "rows": int(summary["readings"].sum())})
    logger.info("summary of %d sensors", len(summary))
    return summary
