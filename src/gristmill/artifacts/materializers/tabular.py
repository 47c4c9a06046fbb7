"""pandas DataFrames and pyarrow Tables as Parquet (index kept for pandas).

Floating-point columns are written without a dictionary: their values rarely repeat, so
pyarrow would build a dictionary only to throw it away, which made writing a float-heavy
frame about 1.6x slower; every other column keeps dictionary encoding. The file is hashed
while it is written and loaded memory-mapped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gristmill.artifacts.materializers.base import (
    CannotMaterialize,
    HashingFile,
    Materializer,
    clip,
    module_loaded,
)

PARQUET_FILE = "data.parquet"
COLUMN_NAME_CHARS = 100  # of each column name recorded in an artifact's metadata and preview


def write_parquet(table: Any, directory: Path) -> dict[str, str]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    dictionary = [f.name for f in table.schema if not pa.types.is_floating(f.type)]
    with HashingFile(directory / PARQUET_FILE) as sink:
        pq.write_table(table, sink, use_dictionary=dictionary)
    return {PARQUET_FILE: sink.hexdigest()}


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
