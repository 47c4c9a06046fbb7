"""pandas DataFrames and pyarrow Tables as Parquet (index kept for pandas).

Floating-point columns are written without a dictionary: their values rarely repeat, so
pyarrow would build a dictionary only to throw it away, which made writing a float-heavy
frame about 1.6x slower; every other column keeps dictionary encoding. The file is hashed
while it is written and loaded memory-mapped. ``frame_visualization`` is the bounded
description (shape, dtypes, head, statistics) every DataFrame materializer shows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gristmill.artifacts.materializers.base import (
    CannotMaterialize,
    HashingFile,
    Materializer,
    Visualization,
    clip,
    module_loaded,
)

PARQUET_FILE = "data.parquet"
COLUMN_NAME_CHARS = 100  # of each column name recorded in an artifact's metadata and preview
# What a DataFrame's visualization shows, whatever its size: it stays a few kilobytes, and
# its statistics cost a pass over at most STATISTICS_ROWS rows (an even sample of longer ones).
HEAD_ROWS = 10
SHOWN_COLUMNS = 20
DTYPE_ROWS = 50
CELL_CHARS = 60
STATISTICS_ROWS = 100_000
STATISTICS = ("count", "mean", "std", "min", "max")


def cell(value: Any) -> str:
    """A value as one short line of text."""
    try:
        return clip(str(value), CELL_CHARS)
    except Exception:
        return f"<{type(value).__name__}>"


def number(value: Any) -> Any:
    """A statistic as JSON: a finite number, else its text (``nan``, ``inf``), None if missing."""
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    try:
        as_float = float(value)
    except (TypeError, ValueError):
        return cell(value)  # dates, durations: shown as text
    if math.isnan(as_float):
        return None
    if not math.isfinite(as_float):
        return str(as_float)
    if isinstance(value, int) or type(value).__name__.startswith(("int", "uint")):
        return int(value)
    return as_float


def sample_step(rows: int) -> int:
    """Take every n-th row so that at most STATISTICS_ROWS are summarized."""
    return max(1, -(-rows // STATISTICS_ROWS))


def frame_visualization(
    *,
    rows: int,
    total_columns: int,
    columns: Sequence[Any],
    dtypes: Sequence[Any],
    head_columns: Sequence[Any],
    head_rows: Sequence[Sequence[Any]],
    statistics: Sequence[Sequence[Any]],
    step: int = 1,
) -> Visualization:
    """Shape, dtypes, head and summary statistics as a "sections" visualization. ``columns``
    and ``dtypes`` are (at least) the first DTYPE_ROWS names and dtypes; ``statistics`` rows
    are ``[column, count, mean, std, min, max]`` of numeric columns, summarized over every
    ``step``-th row."""
    dtype_rows = [
        [cell(c), cell(t)] for c, t in zip(columns[:DTYPE_ROWS], dtypes[:DTYPE_ROWS], strict=False)
    ]
    if total_columns > DTYPE_ROWS:
        dtype_rows.append(["...", f"{total_columns - DTYPE_ROWS} more columns"])
    sections: list[Visualization] = [
        {"kind": "fields", "title": "shape", "fields": {"rows": rows, "columns": total_columns}},
        {"kind": "table", "title": "dtypes", "columns": ["column", "dtype"], "rows": dtype_rows},
    ]
    if head_columns:
        title = f"head ({min(rows, HEAD_ROWS)} rows"
        title += f", first {len(head_columns)} columns)" if total_columns > SHOWN_COLUMNS else ")"
        sections.append(
            {
                "kind": "table",
                "title": title,
                "columns": [cell(c) for c in head_columns],
                "rows": [[cell(v) for v in row] for row in head_rows],
            }
        )
    if statistics:
        title = "statistics of numeric columns"
        if step > 1:
            title += f" (every {step}th row: {-(-rows // step):,} of {rows:,})"
        sections.append(
            {
                "kind": "table",
                "title": title,
                "columns": ["column", *STATISTICS],
                "rows": [[cell(row[0]), *(number(v) for v in row[1:])] for row in statistics],
            }
        )
    return {"kind": "sections", "sections": sections}


def pandas_visualization(value: Any) -> Visualization:
    import pandas as pd

    frame = value.to_frame() if isinstance(value, pd.Series) else value
    rows, width = frame.shape
    shown = frame.iloc[:HEAD_ROWS, :SHOWN_COLUMNS]
    with_index = not isinstance(frame.index, pd.RangeIndex)
    head_columns = (["(index)"] if with_index else []) + list(shown.columns)
    head_rows = [
        ([index] if with_index else []) + list(row)
        for index, row in zip(shown.index, shown.itertuples(index=False, name=None), strict=True)
    ]
    numeric = [
        i
        for i, dtype in enumerate(frame.dtypes.iloc[: DTYPE_ROWS * 4])
        if getattr(dtype, "kind", "") in ("i", "u", "f")
    ][:SHOWN_COLUMNS]
    step = sample_step(rows)
    statistics = []
    if numeric:
        sample = frame.iloc[::step, numeric]
        for position, name in enumerate(sample.columns):
            statistics.append([name, *_column_statistics(sample.iloc[:, position])])
    return frame_visualization(
        rows=rows,
        total_columns=width,
        columns=list(frame.columns[:DTYPE_ROWS]),
        dtypes=[str(t) for t in frame.dtypes.iloc[:DTYPE_ROWS]],
        head_columns=head_columns,
        head_rows=head_rows,
        statistics=statistics,
        step=step,
    )


def write_parquet(table: Any, directory: Path) -> dict[str, str]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    dictionary = [f.name for f in table.schema if not pa.types.is_floating(f.type)]
    with HashingFile(directory / PARQUET_FILE) as sink:
        pq.write_table(table, sink, use_dictionary=dictionary)
    return {PARQUET_FILE: sink.hexdigest()}


def _column_statistics(column: Any) -> list[Any]:
    """count, mean, std, min and max of a numeric column: with numpy for numpy dtypes (pandas'
    own methods cost more per call than the 100,000 values do), else with pandas (nullable
    integer and float dtypes)."""
    import warnings

    import numpy as np

    if not isinstance(column.dtype, np.dtype):
        return [column.count(), column.mean(), column.std(), column.min(), column.max()]
    values = column.to_numpy()
    if values.dtype.kind != "f":
        if not values.size:
            return [0, None, None, None, None]
        std = values.std(ddof=1, dtype=np.float64) if values.size > 1 else None
        mean = values.mean(dtype=np.float64)
        return [values.size, mean, std, values.min(), values.max()]
    count = int(values.size - np.count_nonzero(np.isnan(values)))
    if not count:
        return [0, None, None, None, None]
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        std = np.nanstd(values, ddof=1, dtype=np.float64) if count > 1 else None
        return [count, np.nanmean(values), std, np.nanmin(values), np.nanmax(values)]


class PandasMaterializer(Materializer):
    name = "pandas"
    version = "2"  # 2: no dictionary for float columns (same data, different bytes)
    priority = 20

    @classmethod
    def can_handle(cls, data_type: type) -> bool:
        pd = module_loaded("pandas")
        return pd is not None and issubclass(data_type, (pd.DataFrame, pd.Series))

    def save(self, value: Any, directory: Path) -> dict[str, str]:
        import pandas as pd
        import pyarrow as pa

        frame = value.to_frame() if isinstance(value, pd.Series) else value
        if frame.columns.inferred_type.startswith("mixed") and frame.columns.nlevels == 1:
            # Parquet would turn names like [0, "a"] into strings and they would come back
            # different; the fallback keeps them as they are.
            raise CannotMaterialize
        try:
            table = pa.Table.from_pandas(frame)
        except pa.ArrowException:  # e.g. an object column mixing ints and strings
            raise CannotMaterialize from None
        return write_parquet(table, directory)

    def load(self, directory: Path, data_type: str) -> Any:
        import pandas as pd

        frame = pd.read_parquet(directory / PARQUET_FILE, engine="pyarrow", memory_map=True)
        if data_type.endswith(".Series"):
            return frame.iloc[:, 0]
        return frame

    def describe(self, value: Any) -> tuple[str, dict[str, Any]]:
        # Only the first 100 column names, each cut short: names are data too.
        every = getattr(value, "columns", [getattr(value, "name", None)])
        columns = [clip(str(c), COLUMN_NAME_CHARS) for c in every[:100]]
        meta = {"rows": len(value), "columns": columns}
        shown = ", ".join(columns[:8]) + (", ..." if len(every) > 8 else "")
        return clip(
            f"{type(value).__name__}: {len(value)} rows x {len(every)} columns [{shown}]"
        ), meta

    def visualize(self, value: Any) -> Visualization | None:
        return pandas_visualization(value)


class ArrowMaterializer(Materializer):
    name = "pyarrow"
    version = "2"
    priority = 20

    @classmethod
    def can_handle(cls, data_type: type) -> bool:
        pa = module_loaded("pyarrow")
        return pa is not None and issubclass(data_type, pa.Table)

    def save(self, value: Any, directory: Path) -> dict[str, str]:
        return write_parquet(value, directory)

    def load(self, directory: Path, data_type: str) -> Any:
        import pyarrow.parquet as pq

        return pq.read_table(directory / PARQUET_FILE, memory_map=True)

    def describe(self, value: Any) -> tuple[str, dict[str, Any]]:
        columns = [clip(str(c), COLUMN_NAME_CHARS) for c in value.column_names[:100]]
        meta = {"rows": value.num_rows, "columns": columns}
        shown = ", ".join(columns[:8]) + (", ..." if value.num_columns > 8 else "")
        return clip(f"Table: {value.num_rows} rows x {value.num_columns} columns [{shown}]"), meta
