"""The quickstart's steps: a real scikit-learn workflow on the wine dataset that ships with
scikit-learn. `pipeline.py` wires them in Python, `pipeline.yaml` in YAML: the same pipeline."""

from __future__ import annotations

import logging
from typing import Annotated, Any

import pandas as pd

from gristmill import log_metadata, step

logger = logging.getLogger(__name__)


@step
def load_data() -> Annotated[pd.DataFrame, "wine"]:
    """The wine recognition dataset: 178 wines, 13 chemical measurements, 3 cultivars."""
    from sklearn.datasets import load_wine

    frame = load_wine(as_frame=True).frame
    logger.info("loaded %d rows, %d columns", len(frame), frame.shape[1])
    return frame


@step
def split(
    data: pd.DataFrame, test_size: float = 0.25, seed: int = 42
) -> tuple[Annotated[pd.DataFrame, "train_set"], Annotated[pd.DataFrame, "test_set"]]:
    from sklearn.model_selection import train_test_split

    train, test = train_test_split(
        data, test_size=test_size, random_state=seed, stratify=data["target"]
    )
    log_metadata({"train_rows": len(train), "test_rows": len(test)})
    return train, test


@step
def train(train_set: pd.DataFrame, C: float = 1.0, seed: int = 42) -> Annotated[Any, "model"]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    features = train_set.drop(columns="target")
    model = make_pipeline(
        StandardScaler(), LogisticRegression(C=C, max_iter=1000, random_state=seed)
    )
    model.fit(features, train_set["target"])
    log_metadata({"train_accuracy": float(model.score(features, train_set["target"]))})
    return model


@step
def evaluate(model: Any, test_set: pd.DataFrame) -> Annotated[dict, "metrics"]:
    from sklearn.metrics import accuracy_score, f1_score

    predictions = model.predict(test_set.drop(columns="target"))
    metrics = {
        "accuracy": float(accuracy_score(test_set["target"], predictions)),
        "f1_macro": float(f1_score(test_set["target"], predictions, average="macro")),
    }
    print(f"test accuracy {metrics['accuracy']:.3f}, macro F1 {metrics['f1_macro']:.3f}")
    log_metadata(metrics)
    return metrics
