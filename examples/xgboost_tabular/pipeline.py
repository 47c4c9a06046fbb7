"""XGBoost on a tabular dataset that ships with scikit-learn (breast cancer: 569 tumours, 30
measurements each). The model goes between steps in XGBoost's own format, not pickle.

Run it from this folder with `python pipeline.py` or `gristmill run pipeline:training`."""

from __future__ import annotations

from typing import Annotated, Any

import pandas as pd

from gristmill import log_metadata, pipeline, step


@step
def load_data() -> Annotated[pd.DataFrame, "tumours"]:
    from sklearn.datasets import load_breast_cancer

    return load_breast_cancer(as_frame=True).frame


@step
def split(
    data: pd.DataFrame, test_size: float = 0.25, seed: int = 7
) -> tuple[Annotated[pd.DataFrame, "train_set"], Annotated[pd.DataFrame, "test_set"]]:
    from sklearn.model_selection import train_test_split

    train, test = train_test_split(
        data, test_size=test_size, random_state=seed, stratify=data["target"]
    )
    return train, test


@step
def train(
    train_set: pd.DataFrame, n_estimators: int = 50, max_depth: int = 3, seed: int = 7
) -> Annotated[Any, "model"]:
    from xgboost import XGBClassifier

    model = XGBClassifier(n_estimators=n_estimators, max_depth=max_depth, random_state=seed)
    return model.fit(train_set.drop(columns="target"), train_set["target"])


@step
def evaluate(model: Any, test_set: pd.DataFrame) -> Annotated[float, "accuracy"]:
    predictions = model.predict(test_set.drop(columns="target"))
    accuracy = float((predictions == test_set["target"].to_numpy()).mean())
    print(f"test accuracy {accuracy:.3f}")
    log_metadata({"accuracy": accuracy})
    return accuracy


@pipeline
def training(n_estimators: int = 50, max_depth: int = 3, seed: int = 7) -> None:
    train_set, test_set = split(load_data(), seed=seed)
    model = train(train_set, n_estimators=n_estimators, max_depth=max_depth, seed=seed)
    evaluate(model, test_set)


if __name__ == "__main__":
    run = training()
    print(run.name, run.status, run.metadata)
