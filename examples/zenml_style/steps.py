"""Steps of the ZenML-style example: data, training, evaluation, promotion, prediction."""

from __future__ import annotations

import logging
from typing import Annotated

import pandas as pd
from sklearn.base import ClassifierMixin

from gristmill import ArtifactConfig, Client, get_step_context, log_metadata, step

logger = logging.getLogger(__name__)
TARGET = "target"


@step
def load_wines(rows: int = 0) -> Annotated[pd.DataFrame, "raw_wines"]:
    """The wine recognition table (bundled with scikit-learn), or its first ``rows``."""
    from sklearn.datasets import load_wine

    frame = load_wine(as_frame=True).frame.sample(frac=1.0, random_state=7)
    return (frame.head(rows) if rows else frame).reset_index(drop=True)


@step
def split_and_scale(
    raw: pd.DataFrame, test_size: float = 0.25
) -> tuple[Annotated[pd.DataFrame, "train_set"], Annotated[pd.DataFrame, "test_set"]]:
    """Split, then scale the features with the training part's mean and deviation."""
    cut = int(len(raw) * (1 - test_size))
    train, test = raw.iloc[:cut].copy(), raw.iloc[cut:].copy()
    features = [c for c in raw.columns if c != TARGET]
    mean, std = train[features].mean(), train[features].std().replace(0, 1)
    train[features] = (train[features] - mean) / std
    test[features] = (test[features] - mean) / std
    log_metadata({"rows": len(train)}, artifact="train_set")
    return train.reset_index(drop=True), test.reset_index(drop=True)


@step
def train(
    train_set: pd.DataFrame, model_type: str = "logistic"
) -> Annotated[ClassifierMixin, ArtifactConfig(name="classifier", is_model_artifact=True)]:
    """A classifier of ``model_type``: ``logistic`` or ``forest``."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    models = {
        "logistic": lambda: LogisticRegression(max_iter=200),
        "forest": lambda: RandomForestClassifier(n_estimators=10, max_depth=2, random_state=0),
    }
    if model_type not in models:
        raise ValueError(f"model_type {model_type!r}: choose one of {sorted(models)}")
    model = models[model_type]()
    model.fit(train_set.drop(columns=[TARGET]), train_set[TARGET])
    return model


@step(cache=False)  # metrics go on each run's model version
def evaluate(model: ClassifierMixin, test_set: pd.DataFrame) -> Annotated[float, "accuracy"]:
    accuracy = float(model.score(test_set.drop(columns=[TARGET]), test_set[TARGET]))
    log_metadata({"accuracy": accuracy}, infer_model=True)
    logger.info("accuracy %.3f", accuracy)
    return accuracy


@step(cache=False)  # it acts on the registry: a cache hit would skip it
def promote(accuracy: float, metric: str = "accuracy") -> Annotated[bool, "promoted"]:
    """Put this run's model version in production when it beats the one there by ``metric``."""
    current = get_step_context().model
    production = Client().get_model(current.name).stage("production")
    if production is not None and production.metadata.get(metric, 0.0) >= accuracy:
        logger.info("version %s stays in production", production.version)
        return False
    current.set_stage("production", force=True)
    logger.info("version %s promoted to production", current.version)
    return True


@step
def predict(model: ClassifierMixin, data: pd.DataFrame) -> Annotated[pd.Series, "predictions"]:
    features = data.drop(columns=[TARGET], errors="ignore")
    return pd.Series(model.predict(features), name="predicted")
