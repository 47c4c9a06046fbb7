"""Dask preprocessing between pandas steps. Run it from this folder with
`gristmill run pipeline:dask_preprocessing` or `python pipeline.py` (needs `pip install
"gristmill[dask]"`)."""

from __future__ import annotations

from steps import generate, preprocess, summarize

from gristmill import pipeline


@pipeline
def dask_preprocessing(rows: int = 20_000, partitions: int = 4) -> None:
    summarize(preprocess(generate(rows=rows), partitions=partitions))


if __name__ == "__main__":
    run = dask_preprocessing()
    print(run.name, run.status, run.metadata)
