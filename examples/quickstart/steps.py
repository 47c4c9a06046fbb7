"""The quickstart's steps: scikit-learn on the wine dataset that ships with it. The model is
returned as its fitted numbers (plain JSON, readable anywhere), not as a pickled object."""

from __future__ import annotations

import logging
from typing import Annotated

import numpy as np
import pandas as pd

from gristmill import log_metadata, step

logger = logging.getLogger(__name__)


@step
def load_data() -> Annotated[pd.DataFrame, "wine"]:
    """178 wines, 13 chemical measurements each, and their cultivar (the target)."""
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
def train(train_set: pd.DataFrame, C: float = 1.0, seed: int = 42) -> Annotated[dict, "model"]:
    """A standardized logistic regression; returns what it learned as JSON-able numbers."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    features = train_set.drop(columns="target")
    scaler = StandardScaler().fit(features)
    classifier = LogisticRegression(C=C, max_iter=1000, random_state=seed)
    classifier.fit(scaler.transform(features), train_set["target"])
    model = {
        "features": list(features.columns),
        "mean": scaler.mean_.tolist(),
        "scale": scaler.scale_.tolist(),
        "coef": classifier.coef_.tolist(),
        "intercept": classifier.intercept_.tolist(),
        "classes": classifier.classes_.tolist(),
    }
    log_metadata({"train_accuracy": accuracy(model, train_set)})
    return model


def predict(model: dict, frame: pd.DataFrame) -> np.ndarray:
    """What the fitted pipeline predicts: standardize, score each class, take the best."""
    x = (frame[model["features"]].to_numpy() - model["mean"]) / model["scale"]
    scores = x @ np.asarray(model["coef"]).T + model["intercept"]
    return np.asarray(model["classes"])[scores.argmax(axis=1)]


def accuracy(model: dict, frame: pd.DataFrame) -> float:
    return float((predict(model, frame) == frame["target"].to_numpy()).mean())


@step
def evaluate(model: dict, test_set: pd.DataFrame) -> Annotated[dict, "metrics"]:
    from sklearn.metrics import f1_score

    predictions = predict(model, test_set)
    metrics = {
        "accuracy": accuracy(model, test_set),
        "f1_macro": float(f1_score(test_set["target"], predictions, average="macro")),
    }
    print(f"test accuracy {metrics['accuracy']:.3f}, macro F1 {metrics['f1_macro']:.3f}")
    log_metadata(metrics)
    return metrics
