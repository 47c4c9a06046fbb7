"""A Spark DataFrame of 1e6 rows passed between two gristmill steps, against Spark's own
``write.parquet`` + ``read.parquet`` (and a ``count`` to force the read) of the same frame.

Both sides run in one process on one local SparkSession (started once, not timed), in a
throwaway project; min and median of 3 repeats; prints one JSON object.

    python benchmarks/spark_frame.py [--rows 1000000] [--repeats 3]
"""

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql import functions as F

    from gristmill import pipeline, step
    from gristmill.testing import temporary_project

    spark = (
        SparkSession.builder.master("local[*]")
        .appName("gristmill-bench")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")

    def frame() -> DataFrame:
        return (
            spark.range(args.rows)
            .withColumn("x", F.rand(seed=1))
            .withColumn("label", (F.col("id") % 7).cast("int"))
            .withColumn("name", F.concat(F.lit("row-"), F.col("id").cast("string")))
        )

    counted: list[int] = []

    @step(cache=False)
    def produce() -> Annotated[DataFrame, "frame"]:
        return frame()

    @step(cache=False)
    def consume(frame: DataFrame) -> int:
        counted.append(frame.count())
        return counted[-1]

    @pipeline(name="spark_frame_bench")
    def between_steps() -> None:
        consume(produce())

    def raw(folder: Path) -> None:
        path = str(folder / "raw")
        frame().write.parquet(path)
        counted.append(spark.read.parquet(path).count())
        shutil.rmtree(path)

    timings: dict[str, list[float]] = {"gristmill": [], "raw": []}
    with tempfile.TemporaryDirectory(prefix="gristmill-bench-") as temporary:
        folder = Path(temporary)
        with temporary_project(folder / "project"):
            between_steps()  # warm: imports, the store, Spark's code paths
            raw(folder)
            for _ in range(args.repeats):
                started = time.perf_counter()
                raw(folder)
                timings["raw"].append(time.perf_counter() - started)
                started = time.perf_counter()
                run = between_steps()
                timings["gristmill"].append(time.perf_counter() - started)
                assert run.status == "completed", run.status
    spark.stop()
    assert set(counted) == {args.rows}, counted

    result: dict[str, Any] = {
        "benchmark": "spark_frame",
        "rows": args.rows,
        "repeats": args.repeats,
    }
    for name, values in timings.items():
        result[f"{name}_min_s"] = round(min(values), 3)
        result[f"{name}_median_s"] = round(statistics.median(values), 3)
    result["ratio_median"] = round(result["gristmill_median_s"] / result["raw_median_s"], 2)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
