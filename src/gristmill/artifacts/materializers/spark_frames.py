"""Spark DataFrames as Parquet written by Spark itself, read back lazily by a SparkSession.

The session is the step's: the one active in this thread, else the process's (created on
first use with ``SparkSession.builder.getOrCreate()``, which is ``local[*]`` unless
``spark-submit`` or ``PYSPARK_SUBMIT_ARGS`` say otherwise). Executors write straight into
the artifact's staging folder, so with a cluster that folder must be on a filesystem they
share; a ``spark`` step operator will set that up.

Spark names its part files with a random id per write and leaves ``_SUCCESS`` and ``.crc``
files beside them. They are renamed ``part-00000.parquet``, ... (in Spark's order) and the
rest removed, so the same rows in the same partitions give the same content hash, and the
steps downstream hit their cache. The hash changes when the partitioning does (a shuffle
whose order is not deterministic, another ``spark.sql.shuffle.partitions``).
Nothing here starts a Spark job beyond the write: row counts and the head shown for an
artifact come from the Parquet files just written (pyarrow reads their footers).
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
from gristmill.artifacts.materializers.tabular import COLUMN_NAME_CHARS

DATA_FOLDER = "data"  # the Parquet dataset: part-00000.parquet, part-00001.parquet, ...
HEAD_ROWS = 10


class SparkDataFrameMaterializer(LoadsAs, Materializer):
    """``pyspark.sql.DataFrame`` (classic) as a folder of Parquet part files, one per
    partition; ``load`` returns a lazy DataFrame over them, and ``load_as(..., pandas
    DataFrame)`` reads them without Spark."""

    name = "spark"
    priority = 20

    def __init__(self) -> None:
        self._parts: list[Path] = []

    @classmethod
    def can_handle(cls, data_type: type) -> bool:
        sql = module_loaded("pyspark.sql")
        return sql is not None and issubclass(data_type, sql.DataFrame)

    def save(self, value: Any, directory: Path) -> None:
        target = directory / DATA_FOLDER
        value.write.mode("errorifexists").parquet(str(target))
        self._parts = deterministic_parts(target)
        write_library_stamp(directory, "pyspark", format="parquet")

    def load(self, directory: Path, data_type: str) -> Any:
        check_library_stamp(directory)
        return spark_session().read.parquet(str(directory / DATA_FOLDER))

    @classmethod
    def loads_as(cls, target: type) -> bool:
        """Whether ``load_as`` can give a value of ``target``: a pandas DataFrame."""
        pd = module_loaded("pandas")
        return pd is not None and target is pd.DataFrame

    def load_as(self, directory: Path, data_type: str, target: type) -> Any:
        """The artifact as a ``target`` for a step that asks for one: a pandas DataFrame read
        from the Parquet files by pyarrow, with no Spark session (nor JVM) needed."""
        import pyarrow.parquet as pq

        check_library_stamp(directory)
        if not self.loads_as(target):
            raise TypeError(f"a Spark DataFrame artifact cannot be loaded as a {target!r}")
        return pq.read_table(directory / DATA_FOLDER).to_pandas()

    def describe(self, value: Any) -> tuple[str, dict[str, Any]]:
        columns = [clip(str(c), COLUMN_NAME_CHARS) for c in value.columns[:100]]
        meta: dict[str, Any] = {"columns": columns, "partitions": len(self._parts)}
        rows = parquet_rows(self._parts)
        if rows is not None:
            meta["rows"] = rows
        shown = ", ".join(columns[:8]) + (", ..." if len(value.columns) > 8 else "")
        counted = f"{rows} rows x " if rows is not None else ""
        return clip(
            f"Spark DataFrame: {counted}{len(value.columns)} columns in {len(self._parts)} "
            f"partitions [{shown}]"
        ), meta

    def visualize(self, value: Any) -> Visualization | None:
        return parquet_sections(
            self._parts, [(f.name, f.dataType.simpleString()) for f in value.schema]
        )


def spark_session() -> Any:
    """The SparkSession a step uses: this thread's active one, else the process's (created
    with the defaults: ``local[*]`` when nothing configures a master)."""
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    return active if active is not None else SparkSession.builder.getOrCreate()


def deterministic_parts(folder: Path) -> list[Path]:
    """Rename Spark's part files ``part-00000.parquet``, ... in the order Spark numbered them
    and delete its bookkeeping files (``_SUCCESS``, ``.crc``): the folder then depends only on
    the data and its partitioning. Returns the part files."""
    parts = []
    for index, path in enumerate(sorted(folder.glob("part-*.parquet"))):
        renamed = folder / f"part-{index:05d}.parquet"
        path.rename(renamed)
        parts.append(renamed)
    for path in folder.iterdir():
        if path not in parts:
            path.unlink()  # _SUCCESS and the checksum files of Hadoop's local filesystem
    return parts


def parquet_rows(parts: list[Path]) -> int | None:
    """The number of rows in these Parquet files, from their footers (None if unreadable)."""
    import pyarrow.parquet as pq

    try:
        return sum(int(pq.read_metadata(part).num_rows) for part in parts)
    except OSError:
        return None


def parquet_sections(parts: list[Path], dtypes: list[tuple[str, str]]) -> Visualization | None:
    """A visualization of a partitioned Parquet dataset: its column types, and its first rows
    read from the first part files (at most ``HEAD_ROWS``, never the whole dataset)."""
    import pyarrow.parquet as pq

    sections: list[Visualization] = [
        {
            "kind": "table",
            "title": "dtypes",
            "columns": ["column", "type"],
            "rows": [
                [clip(n, COLUMN_NAME_CHARS), clip(t, COLUMN_NAME_CHARS)] for n, t in dtypes[:100]
            ],
        }
    ]
    head: list[list[Any]] = []
    names: list[str] = []
    for part in parts:
        file = pq.ParquetFile(part)
        if file.metadata.num_rows == 0:
            continue
        batch = next(file.iter_batches(batch_size=HEAD_ROWS - len(head)), None)
        if batch is None:
            continue
        names = [clip(str(n), COLUMN_NAME_CHARS) for n in batch.schema.names[:50]]
        for row in batch.slice(0, HEAD_ROWS - len(head)).to_pylist():
            head.append([clip(str(v), 60) for v in list(row.values())[:50]])
        if len(head) >= HEAD_ROWS:
            break
    if head:
        sections.append({"kind": "table", "title": "head", "columns": names, "rows": head})
    return {"kind": "sections", "sections": sections}
