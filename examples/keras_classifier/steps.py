"""The Keras example's steps: a tiny dense classifier on scikit-learn's wine data (178 wines,
13 measurements). The model passes between steps in the `.keras` format, loaded with
`safe_mode=True`: no pickle anywhere."""

from __future__ import annotations

from typing import Annotated

import keras
import numpy as np

from gristmill import log_metadata, step


@step
def load_wine(
    test_size: float = 0.25, seed: int = 0
) -> tuple[
    Annotated[np.ndarray, "x_train"],
    Annotated[np.ndarray, "y_train"],
    Annotated[np.ndarray, "x_test"],
    Annotated[np.ndarray, "y_test"],
]:
    from sklearn.datasets import load_wine as wine
    from sklearn.model_selection import train_test_split

    features, labels = wine(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(
        features.astype("float32"), labels, test_size=test_size, random_state=seed, stratify=labels
    )
    return x_train, y_train, x_test, y_test


@step
def train(
    x_train: np.ndarray, y_train: np.ndarray, epochs: int = 20, seed: int = 0
) -> Annotated[keras.Model, "model"]:
    keras.utils.set_random_seed(seed)
    normalize = keras.layers.Normalization()
    normalize.adapt(x_train)
    model = keras.Sequential(
        [
            keras.Input((x_train.shape[1],)),
            normalize,
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(0.01),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    history = model.fit(x_train, y_train, epochs=epochs, batch_size=32, verbose=0)
    for epoch, (loss, accuracy) in enumerate(
        zip(history.history["loss"], history.history["accuracy"], strict=True), start=1
    ):
        log_metadata({f"loss_epoch_{epoch}": loss, f"train_accuracy_epoch_{epoch}": accuracy})
    log_metadata({"loss": history.history["loss"][-1], "epoch": epochs})
    return model


@step
def evaluate(
    model: keras.Model, x_test: np.ndarray, y_test: np.ndarray
) -> Annotated[dict, "metrics"]:
    predicted = model.predict(x_test, verbose=0).argmax(axis=1)
    metrics = {"test_accuracy": float((predicted == y_test).mean())}
    print(f"test accuracy {metrics['test_accuracy']:.3f}")
    log_metadata(metrics)
    return metrics
