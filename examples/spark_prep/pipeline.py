"""Spark prepares, scikit-learn trains. Run it from this folder with
`gristmill run pipeline:spark_prep` or `python pipeline.py` (needs `pip install
"gristmill[spark,sklearn]"` and Java 17+)."""

from __future__ import annotations

from steps import load_raw, prepare, train

from gristmill import pipeline


@pipeline
def spark_prep(min_alcohol: float = 11.5, seed: int = 7) -> None:
    train(prepare(load_raw(), min_alcohol=min_alcohol), seed=seed)


if __name__ == "__main__":
    run = spark_prep()
    print(run.name, run.status, run.metadata)
