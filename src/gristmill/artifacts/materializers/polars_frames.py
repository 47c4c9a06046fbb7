"""polars DataFrames and Series as Parquet, written and read by polars itself.

Parquet is an open format that any later polars (or pyarrow, or Spark) reads, so the polars
version that wrote a file is recorded for provenance but does not gate loading. Columns of
polars' ``Object`` dtype (arbitrary Python objects) have no Parquet form: such frames go to
the next materializer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gristmill.artifacts.materializers.base import (
    CannotMaterialize,
    Materializer,
    Visualization,
    clip,
    module_loaded,
    write_library_stamp,
)
from gristmill.artifacts.materializers.tabular import (
    COLUMN_NAME_CHARS,
    DTYPE_ROWS,
    HEAD_ROWS,
    PARQUET_FILE,
    SHOWN_COLUMNS,
    frame_visualization,
    sample_step,
)
from gristmill.errors import MissingIntegrationError


class PolarsMaterializer(Materializer):
    name = "polars"
    priority = 20

    @classmethod
    def can_handle(cls, data_type: type) -> bool:
        pl = module_loaded("polars")
        return pl is not None and issubclass(data_type, (pl.DataFrame, pl.Series))

    def save(self, value: Any, directory: Path) -> None:
        import polars as pl

        frame = value.to_frame() if isinstance(value, pl.Series) else value
        if any(dtype == pl.Object for dtype in frame.schema.values()):
            raise CannotMaterialize
        frame.write_parquet(directory / PARQUET_FILE)
        write_library_stamp(directory, "polars")

    def load(self, directory: Path, data_type: str) -> Any:
        try:
            import polars as pl
        except ImportError:
            raise MissingIntegrationError("polars", "polars", "loading a polars frame") from None
        frame = pl.read_parquet(directory / PARQUET_FILE, memory_map=True)
        if data_type.endswith(".Series"):
            return frame.to_series(0)
        return frame

    def describe(self, value: Any) -> tuple[str, dict[str, Any]]:
        frame = value.to_frame() if hasattr(value, "to_frame") else value
        names = frame.columns
        columns = [clip(str(c), COLUMN_NAME_CHARS) for c in names[:100]]
        meta = {"rows": frame.height, "columns": columns}
        shown = ", ".join(columns[:8]) + (", ..." if len(names) > 8 else "")
        text = f"{type(value).__name__}: {frame.height} rows x {frame.width} columns [{shown}]"
        return clip(text), meta

    def visualize(self, value: Any) -> Visualization | None:
        import polars as pl

        frame = value.to_frame() if isinstance(value, pl.Series) else value
        schema = frame.schema
        names = frame.columns
        head = frame.select(names[:SHOWN_COLUMNS]).head(HEAD_ROWS)
        numeric = [n for n in names[: DTYPE_ROWS * 4] if schema[n].is_numeric()][:SHOWN_COLUMNS]
        step = sample_step(frame.height)
        statistics: list[list[Any]] = []
        if numeric:
            sample = frame.select(numeric).gather_every(step)
            found = sample.select(
                expression
                for i, n in enumerate(numeric)
                for expression in (
                    pl.col(n).count().alias(f"{i}c"),
                    pl.col(n).cast(pl.Float64).mean().alias(f"{i}m"),
                    pl.col(n).cast(pl.Float64).std().alias(f"{i}s"),
                    pl.col(n).min().alias(f"{i}l"),
                    pl.col(n).max().alias(f"{i}h"),
                )
            ).row(0)
            statistics = [[n, *found[i * 5 : i * 5 + 5]] for i, n in enumerate(numeric)]
        return frame_visualization(
            rows=frame.height,
            total_columns=frame.width,
            columns=names[:DTYPE_ROWS],
            dtypes=[str(schema[n]) for n in names[:DTYPE_ROWS]],
            head_columns=head.columns,
            head_rows=head.rows(),
            statistics=statistics,
            step=step,
        )
