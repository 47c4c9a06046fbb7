"""The quickstart pipeline in Python. Run it with `make quickstart`, `gristmill run
pipeline:training` (from this folder) or `python pipeline.py`; `pipeline.yaml` is the same
pipeline in YAML (same spec hash, same cache hits)."""

from __future__ import annotations

from steps import evaluate, load_data, split, train

from gristmill import pipeline


@pipeline
def training(C: float = 1.0, test_size: float = 0.25, seed: int = 42) -> None:
    data = load_data()
    train_set, test_set = split(data, test_size=test_size, seed=seed)
    model = train(train_set, C=C, seed=seed)
    evaluate(model, test_set)


if __name__ == "__main__":
    run = training()
    print(run.name, run.status, run.metadata)
