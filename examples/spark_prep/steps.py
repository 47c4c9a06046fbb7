"""A Spark data preparation step feeding scikit-learn. Spark cleans and derives features;
the DataFrame it returns is stored as Parquet written by Spark itself (never pickled), and the
training step, annotated ``pd.DataFrame``, receives it as pandas for scikit-learn."""

from __future__ import annotations

import logging
from typing import Annotated, Any

import pandas as pd
from pyspark.sql import DataFrame, SparkSession

from gristmill import log_metadata, step

logger = logging.getLogger(__name__)


def spark() -> SparkSession:
    """The step's SparkSession: the active one (a `spark` step operator, a notebook), else a
    small local one for this example."""
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    session = (
        SparkSession.builder.master("local[2]")
        .appName("gristmill-spark-prep")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    return session


@step
def load_raw() -> Annotated[pd.DataFrame, "raw"]:
    """The wine dataset that ships with scikit-learn (178 rows), as raw data would arrive."""
    from sklearn.datasets import load_wine

    frame = load_wine(as_frame=True).frame
    logger.info("loaded %d rows", len(frame))
    return frame


@step
def prepare(raw: pd.DataFrame, min_alcohol: float = 11.5) -> Annotated[DataFrame, "features"]:
    """Spark does the preparation: filter, derive ratios, standardize every feature."""
    from pyspark.sql import functions as F

    frame = spark().createDataFrame(raw).filter(F.col("alcohol") >= min_alcohol)
    frame = frame.withColumn("phenol_ratio", F.col("flavanoids") / F.col("total_phenols"))
    features = [c for c in frame.columns if c != "target"]
    stats = frame.agg(
        *[F.mean(c).alias(f"{c}_mean") for c in features],
        *[F.stddev(c).alias(f"{c}_std") for c in features],
    ).first()
    assert stats is not None
    scaled = [((F.col(c) - stats[f"{c}_mean"]) / stats[f"{c}_std"]).alias(c) for c in features]
    prepared = frame.select(*scaled, F.col("target").cast("int").alias("target"))
    log_metadata({"rows_kept": prepared.count(), "features": len(features)})
    return prepared.repartition(2, "target")


@step
def train(
    features: pd.DataFrame, test_size: float = 0.3, seed: int = 7
) -> Annotated[dict[str, Any], "metrics"]:
    """scikit-learn on the prepared data. Annotated ``pd.DataFrame``, this step gets the Parquet
    Spark wrote as pandas (read by pyarrow: no Spark session, no JVM)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score
    from sklearn.model_selection import train_test_split

    data = features.sort_values(list(features.columns)).reset_index(drop=True)
    x, y = data.drop(columns="target"), data["target"]
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=test_size, random_state=seed, stratify=y
    )
    model = LogisticRegression(max_iter=1000, random_state=seed).fit(x_train, y_train)
    metrics = {
        "accuracy": float(accuracy_score(y_test, model.predict(x_test))),
        "train_rows": len(x_train),
        "test_rows": len(x_test),
    }
    log_metadata(metrics)
    return metrics
