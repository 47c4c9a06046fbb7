"""pandas DataFrames and pyarrow Tables as Parquet (index kept for pandas)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gristmill.artifacts.materializers.base import Materializer, clip, module_loaded


class PandasMaterializer(Materializer):
    name = "pandas"
    priority = 20

    @classmethod
    def can_handle(cls, data_type: type) -> bool:
        pd = module_loaded("pandas")
        return pd is not None and issubclass(data_type, (pd.DataFrame, pd.Series))

    def save(self, value: Any, directory: Path) -> None:
        import pandas as pd

        frame = value.to_frame() if isinstance(value, pd.Series) else value
        frame.to_parquet(directory / "data.parquet", engine="pyarrow")

    def load(self, directory: Path, data_type: str) -> Any:
        import pandas as pd

        frame = pd.read_parquet(directory / "data.parquet", engine="pyarrow")
        if data_type.endswith(".Series"):
            return frame.iloc[:, 0]
        return frame

    def describe(self, value: Any) -> tuple[str, dict[str, Any]]:
        columns = [str(c) for c in getattr(value, "columns", [getattr(value, "name", None)])]
        meta = {"rows": len(value), "columns": columns[:100]}
        shown = ", ".join(columns[:8]) + (", ..." if len(columns) > 8 else "")
        return clip(
            f"{type(value).__name__}: {len(value)} rows x {len(columns)} columns [{shown}]"
        ), meta


class ArrowMaterializer(Materializer):
    name = "pyarrow"
    priority = 20

    @classmethod
    def can_handle(cls, data_type: type) -> bool:
        pa = module_loaded("pyarrow")
        return pa is not None and issubclass(data_type, pa.Table)

    def save(self, value: Any, directory: Path) -> None:
        import pyarrow.parquet as pq

        pq.write_table(value, directory / "data.parquet")

    def load(self, directory: Path, data_type: str) -> Any:
        import pyarrow.parquet as pq

        return pq.read_table(directory / "data.parquet", memory_map=True)

    def describe(self, value: Any) -> tuple[str, dict[str, Any]]:
        meta = {"rows": value.num_rows, "columns": value.column_names[:100]}
        shown = ", ".join(value.column_names[:8]) + (", ..." if value.num_columns > 8 else "")
        return clip(f"Table: {value.num_rows} rows x {value.num_columns} columns [{shown}]"), meta
