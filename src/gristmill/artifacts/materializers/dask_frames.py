"""Dask DataFrames (and Series) as partitioned Parquet, read back lazily.

``to_parquet`` computes the frame (on the current scheduler: a ``distributed`` client's
workers if one is active, so they must see the staging folder) and writes one file per
partition, named ``part-00000.parquet``, ... so the same data in the same partitions gives
the same content hash. The index is written as a column; when the frame's divisions were
known they are read back from the files' statistics, so ``load`` returns a frame partitioned
as the one saved and nothing is computed until the step asks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gristmill.artifacts.materializers.base import (
    LoadsAs,
    Materializer,
    Visualization,
    check_library_stamp,
    clip,
    module_loaded,
    write_library_stamp,
)
from gristmill.artifacts.materializers.spark_frames import parquet_rows, parquet_sections
from gristmill.artifacts.materializers.tabular import COLUMN_NAME_CHARS

DATA_FOLDER = "data"


def part_name(index: int) -> str:
    return f"part-{index:05d}.parquet"


class DaskDataFrameMaterializer(LoadsAs, Materializer):
    """``dask.dataframe.DataFrame``/``Series`` as a folder of Parquet files, one per
    partition; ``load`` returns a lazy frame, ``load_as(..., pandas DataFrame)`` a computed
    one."""

    name = "dask"
    priority = 20

    def __init__(self) -> None:
        self._parts: list[Path] = []

    @classmethod
    def can_handle(cls, data_type: type) -> bool:
        dd = module_loaded("dask.dataframe")
        return dd is not None and issubclass(data_type, (dd.DataFrame, dd.Series))

    def save(self, value: Any, directory: Path) -> None:
        import dask.dataframe as dd

        frame = value.to_frame() if isinstance(value, dd.Series) else value
        target = directory / DATA_FOLDER
        frame.to_parquet(
            str(target), name_function=part_name, write_index=True, write_metadata_file=False
        )
        self._parts = sorted(target.glob("part-*.parquet"))
        write_library_stamp(
            directory,
            "dask",
            format="parquet",
            known_divisions=bool(frame.known_divisions),
            series=isinstance(value, dd.Series),
        )

    def load(self, directory: Path, data_type: str) -> Any:
        import dask.dataframe as dd

        stamp = check_library_stamp(directory)
        frame = dd.read_parquet(
            str(directory / DATA_FOLDER),
            calculate_divisions=bool(stamp.get("known_divisions")),
        )
        return frame.iloc[:, 0] if stamp.get("series") else frame

    @classmethod
    def loads_as(cls, target: type) -> bool:
        """Whether ``load_as`` can give a value of ``target``: a pandas DataFrame."""
        pd = module_loaded("pandas")
        return pd is not None and target is pd.DataFrame

    def load_as(self, directory: Path, data_type: str, target: type) -> Any:
        """The artifact as a computed pandas DataFrame, for a step that asks for one."""
        if not self.loads_as(target):
            raise TypeError(f"a Dask DataFrame artifact cannot be loaded as a {target!r}")
        loaded = self.load(directory, data_type)
        return loaded.to_frame().compute() if loaded.ndim == 1 else loaded.compute()

    def describe(self, value: Any) -> tuple[str, dict[str, Any]]:
        every = list(value.columns) if value.ndim == 2 else [value.name]
        columns = [clip(str(c), COLUMN_NAME_CHARS) for c in every[:100]]
        meta: dict[str, Any] = {"columns": columns, "partitions": value.npartitions}
        rows = parquet_rows(self._parts)
        if rows is not None:
            meta["rows"] = rows
        shown = ", ".join(columns[:8]) + (", ..." if len(every) > 8 else "")
        counted = f"{rows} rows x " if rows is not None else ""
        return clip(
            f"Dask {type(value).__name__}: {counted}{len(every)} columns in "
            f"{value.npartitions} partitions [{shown}]"
        ), meta

    def visualize(self, value: Any) -> Visualization | None:
        frame = value.to_frame() if value.ndim == 1 else value
        dtypes = [(str(name), str(dtype)) for name, dtype in frame.dtypes.items()]
        return parquet_sections(self._parts, dtypes)
