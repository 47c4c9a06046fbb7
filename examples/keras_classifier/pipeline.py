"""The Keras example: `python pipeline.py` (or `gristmill run pipeline:wine_classifier` from
this folder) trains a tiny Keras classifier on scikit-learn's wine data. Needs
`pip install "gristmill[tensorflow,sklearn]"`."""

from __future__ import annotations

from steps import evaluate, load_wine, train

from gristmill import pipeline


@pipeline
def wine_classifier(epochs: int = 20) -> None:
    x_train, y_train, x_test, y_test = load_wine()
    model = train(x_train, y_train, epochs=epochs)
    evaluate(model, x_test, y_test)


if __name__ == "__main__":
    run = wine_classifier()
    print(run.name, run.status, run.metadata)
