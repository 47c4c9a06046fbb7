"""Spark and Dask DataFrames, Pillow images and the text types of ``gristmill.types`` round-trip
through real pipeline runs in open formats (never the pickle fallback), with stable content
hashes, and refuse to load under an incompatible library version with a clear error.

The libraries are optional extras: a test is skipped where one is missing, except in CI
(``CI`` set), where a missing one fails."""

import base64
import importlib
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Annotated, Any

import pandas as pd
import pytest

from gristmill import pipeline, step
from gristmill.artifacts import LocalArtifactStore, load_artifact, save_artifact
from gristmill.artifacts.materializers.base import LIBRARY_STAMP
from gristmill.errors import MaterializerError
from gristmill.types import CSVString, HTMLString, MarkdownString, TextString


def need(module: str) -> ModuleType:
    """The module, or a skip where it is not installed (a failure in CI)."""
    if os.environ.get("CI"):
        return importlib.import_module(module)
    return pytest.importorskip(module)


@pytest.fixture
def store(tmp_path: Path) -> LocalArtifactStore:
    return LocalArtifactStore(str(tmp_path / "artifacts"))


def stored_files(uri: str) -> list[str]:
    root = Path(uri)
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def break_stamp(uri: str) -> None:
    """Make the artifact at ``uri`` look written by a far older version of its library."""
    path = Path(uri) / LIBRARY_STAMP
    stamp = json.loads(path.read_text())
    stamp["version"] = "0.0.1"
    path.write_text(json.dumps(stamp))


# --- Spark ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    """One small local session for the whole module (Spark starts a JVM: seconds)."""
    need("pyspark")
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[1]")
        .appName("gristmill-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.default.parallelism", "2")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def spark_pipeline(spark: Any) -> Any:
    from pyspark.sql import DataFrame as SparkDataFrame

    @step
    def prepare(rows: int = 50) -> Annotated[SparkDataFrame, "prepared"]:
        from pyspark.sql import functions as F

        frame = spark.range(rows).withColumn("label", F.col("id") % 3)
        return frame.withColumn("score", F.col("id") * 0.5).repartition(3, "id")

    @step
    def summarize(prepared: SparkDataFrame) -> Annotated[pd.DataFrame, "summary"]:
        # A Spark-typed input arrives as a lazy DataFrame over the stored Parquet files.
        return prepared.groupBy("label").count().orderBy("label").toPandas()

    @pipeline(name="spark_prep")
    def prep(rows: int = 50) -> None:
        summarize(prepare(rows=rows))

    return prep


def test_spark_frame_between_steps_is_parquet_and_lazy(spark: Any) -> None:
    from pyspark.sql import DataFrame as SparkDataFrame

    run = spark_pipeline(spark)()
    prepared = run.steps["prepare"].outputs["prepared"]
    assert prepared.materializer == "spark"  # not the pickle fallback
    files = stored_files(prepared.uri)
    assert files == [f"data/part-0000{i}.parquet" for i in range(3)] + [LIBRARY_STAMP]
    assert "rows" in prepared.preview and prepared.metadata["rows"] == 50
    assert prepared.metadata["partitions"] == 3
    sections = prepared.metadata["visualization"]["sections"]
    assert [s["title"] for s in sections] == ["dtypes", "head"]
    assert len(sections[1]["rows"]) == 10

    summary = run.steps["summarize"].outputs["summary"].load()
    assert summary["count"].tolist() == [17, 17, 16]

    loaded = prepared.load()
    assert isinstance(loaded, SparkDataFrame)
    assert all(prepared.uri in f for f in loaded.inputFiles())  # lazy: a scan of the files
    assert sorted(r.id for r in loaded.collect()) == list(range(50))


def test_a_pandas_step_reads_a_spark_output_as_pandas(spark: Any) -> None:
    """A Spark DataFrame feeding an input annotated ``pd.DataFrame`` passes compile and arrives
    as pandas, read from the Parquet Spark wrote (no pickle, no conversion step)."""
    from pyspark.sql import DataFrame as SparkDataFrame

    @step
    def prepare(rows: int = 20) -> Annotated[SparkDataFrame, "prepared"]:
        return spark.range(rows).withColumnRenamed("id", "x").repartition(2)

    @step
    def total(prepared: pd.DataFrame) -> int:
        assert isinstance(prepared, pd.DataFrame)
        return int(prepared["x"].sum())

    @pipeline(name="spark_to_pandas")
    def flow() -> None:
        total(prepare())

    run = flow()
    assert run.steps["total"].output().load() == sum(range(20))
    assert run.steps["prepare"].outputs["prepared"].materializer == "spark"


def test_spark_content_hash_is_stable_and_downstream_hits_the_cache(spark: Any) -> None:
    prep = spark_pipeline(spark)
    first = prep()
    again = prep.with_options(steps={"prepare": {"cache": False}})()
    assert again.steps["prepare"].status == "completed"  # written again by Spark...
    assert (
        again.steps["prepare"].outputs["prepared"].content_hash
        == first.steps["prepare"].outputs["prepared"].content_hash
    )
    assert again.steps["summarize"].status == "cached"  # ...so the consumer is not rerun


def test_spark_artifact_loads_as_pandas_without_spark(
    spark: Any, store: LocalArtifactStore
) -> None:
    from gristmill.artifacts.materializers.spark_frames import SparkDataFrameMaterializer

    frame = spark.createDataFrame(
        pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", None], "c": [0.5, None, 2.0]})
    )
    saved = save_artifact(store, frame, where="test")
    directory = store.local_directory(saved.content.uri)
    as_pandas = SparkDataFrameMaterializer().load_as(directory, saved.data_type, pd.DataFrame)
    expected = frame.toPandas()
    pd.testing.assert_frame_equal(
        as_pandas.sort_values("a").reset_index(drop=True), expected, check_dtype=False
    )
    assert SparkDataFrameMaterializer.loads_as(pd.DataFrame)
    assert not SparkDataFrameMaterializer.loads_as(dict)


def test_spark_empty_frame_keeps_its_schema(spark: Any, store: LocalArtifactStore) -> None:
    frame = spark.createDataFrame([], "a long, b string")
    saved = save_artifact(store, frame, where="test")
    loaded = load_artifact(store, saved.content.uri, saved.materializer, saved.data_type)
    assert loaded.schema.simpleString() == frame.schema.simpleString()
    assert loaded.count() == 0


def test_spark_version_mismatch_is_a_clear_error(spark: Any, store: LocalArtifactStore) -> None:
    saved = save_artifact(store, spark.range(3), where="test")
    break_stamp(saved.content.uri)
    with pytest.raises(MaterializerError, match=r"written by pyspark 0\.0\.1 .* pip install"):
        load_artifact(store, saved.content.uri, saved.materializer, saved.data_type)


# --- Dask ----------------------------------------------------------------------------------


def test_dask_frame_between_steps_is_partitioned_parquet() -> None:
    dd = need("dask.dataframe")

    source = pd.DataFrame({"key": [f"k{i:02d}" for i in range(40)], "value": range(40)})

    @step
    def load() -> Annotated[dd.DataFrame, "raw"]:
        return dd.from_pandas(source, npartitions=4)

    @step
    def clean(raw: dd.DataFrame) -> Annotated[dd.DataFrame, "clean"]:
        assert raw.npartitions == 4 and raw.known_divisions  # arrived partitioned, lazily
        return raw[raw.value % 2 == 0].set_index("key")

    @pipeline(name="dask_prep")
    def prep() -> None:
        clean(load())

    run = prep()
    raw = run.steps["load"].outputs["raw"]
    cleaned = run.steps["clean"].outputs["clean"]
    assert (raw.materializer, cleaned.materializer) == ("dask", "dask")  # not pickle
    assert stored_files(raw.uri) == [f"data/part-0000{i}.parquet" for i in range(4)] + [
        LIBRARY_STAMP
    ]
    assert raw.metadata["rows"] == 40 and raw.metadata["partitions"] == 4

    loaded = cleaned.load()
    expected = dd.from_pandas(source, npartitions=4)
    expected = expected[expected.value % 2 == 0].set_index("key")
    assert loaded.known_divisions and loaded.divisions == expected.divisions
    pd.testing.assert_frame_equal(loaded.compute(), expected.compute())

    again = prep.with_options(enable_cache=False)()
    assert again.steps["clean"].outputs["clean"].content_hash == cleaned.content_hash


def test_dask_series_and_pandas_view(store: LocalArtifactStore) -> None:
    dd = need("dask.dataframe")
    from gristmill.artifacts.materializers.dask_frames import DaskDataFrameMaterializer

    series = dd.from_pandas(pd.Series(range(10), name="n"), npartitions=2)
    saved = save_artifact(store, series, where="test")
    assert saved.materializer == "dask"
    loaded = load_artifact(store, saved.content.uri, saved.materializer, saved.data_type)
    pd.testing.assert_series_equal(loaded.compute(), series.compute())
    directory = store.local_directory(saved.content.uri)
    frame = DaskDataFrameMaterializer().load_as(directory, saved.data_type, pd.DataFrame)
    assert isinstance(frame, pd.DataFrame) and frame["n"].tolist() == list(range(10))


def test_dask_version_mismatch_is_a_clear_error(store: LocalArtifactStore) -> None:
    dd = need("dask.dataframe")
    saved = save_artifact(
        store, dd.from_pandas(pd.DataFrame({"a": [1]}), npartitions=1), where="test"
    )
    break_stamp(saved.content.uri)
    with pytest.raises(MaterializerError, match=r"written by dask 0\.0\.1"):
        load_artifact(store, saved.content.uri, saved.materializer, saved.data_type)


# --- Images --------------------------------------------------------------------------------


def image_in(mode: str) -> Any:
    image_module = need("PIL.Image")
    size = (37, 23)
    if mode in ("I", "F"):
        image = image_module.new(mode, size)
        image.putdata([(x * 100_003 - 7) * (1.5 if mode == "F" else 1) for x in range(37 * 23)])
        return image
    if mode == "I;16":
        image = image_module.new(mode, size)
        image.putdata([x * 61 for x in range(37 * 23)])
        return image
    gradient = image_module.linear_gradient("L").resize(size)
    if mode == "P":
        return image_module.merge("RGB", [gradient] * 3).quantize(16)
    return gradient.convert(mode)


@pytest.mark.parametrize(
    ("mode", "file_name"),
    [
        ("RGB", "image.png"),
        ("RGBA", "image.png"),
        ("L", "image.png"),
        ("LA", "image.png"),
        ("1", "image.png"),
        ("P", "image.png"),
        ("I;16", "image.png"),
        ("I", "image.tiff"),  # PNG would cut these to 16 bits
        ("F", "image.tiff"),
        ("CMYK", "image.tiff"),
    ],
)
def test_images_round_trip_losslessly(store: LocalArtifactStore, mode: str, file_name: str) -> None:
    image = image_in(mode)
    saved = save_artifact(store, image, where="test")
    assert saved.materializer == "pillow"
    assert file_name in stored_files(saved.content.uri)
    loaded = load_artifact(store, saved.content.uri, saved.materializer, saved.data_type)
    assert (loaded.mode, loaded.size) == (image.mode, image.size)
    assert loaded.tobytes() == image.tobytes()
    if mode == "P":
        assert loaded.getpalette() == image.getpalette()
    thumbnail = saved.metadata["visualization"]
    assert thumbnail["kind"] == "image" and thumbnail["media_type"] == "image/png"
    assert len(json.dumps(thumbnail)) <= 64 * 1024
    shown = need("PIL.Image").open(io.BytesIO(base64.b64decode(thumbnail["data"])))
    assert shown.format == "PNG" and shown.size == (thumbnail["width"], thumbnail["height"])


def test_image_through_a_pipeline_with_a_bounded_thumbnail() -> None:
    image_module = need("PIL.Image")
    import numpy as np

    noise = np.random.default_rng(0).integers(0, 256, (1200, 1600, 3), dtype=np.uint8)

    @step
    def photo() -> Annotated[image_module.Image, "photo"]:
        return image_module.fromarray(noise, "RGB")

    @step
    def width(photo: image_module.Image) -> int:
        return int(photo.width)

    @pipeline(name="images")
    def images() -> None:
        width(photo())

    run = images()
    version = run.steps["photo"].outputs["photo"]
    assert version.materializer == "pillow"
    assert run.steps["width"].outputs["output"].load() == 1600
    assert np.array_equal(np.asarray(version.load()), noise)
    thumbnail = version.metadata["visualization"]  # noise compresses badly: a smaller one
    assert (
        len(json.dumps(thumbnail)) <= 64 * 1024
        and max(thumbnail["width"], thumbnail["height"]) <= 256
    )
    assert version.metadata["width"] == 1600 and thumbnail["title"] == "1600x1200 RGB"


def test_image_version_mismatch_is_a_clear_error(store: LocalArtifactStore) -> None:
    saved = save_artifact(store, image_in("RGB"), where="test")
    break_stamp(saved.content.uri)
    with pytest.raises(MaterializerError, match=r"written by pillow 0\.0\.1"):
        load_artifact(store, saved.content.uri, saved.materializer, saved.data_type)


# --- Text ----------------------------------------------------------------------------------

TEXTS = [
    (HTMLString("<h1>Report</h1>\r\n<p>accuracy: 0.93 ✓</p>"), "page.html", "html"),
    (MarkdownString("# Report\n\n* accuracy: **0.93**\n"), "document.md", "markdown"),
    (TextString("plain\r\ntext \ud800 with a lone surrogate"), "text.txt", "text"),
]


@pytest.mark.parametrize(("value", "file_name", "kind"), TEXTS)
def test_text_types_round_trip_as_themselves(
    store: LocalArtifactStore, value: str, file_name: str, kind: str
) -> None:
    saved = save_artifact(store, value, where="test")
    assert saved.materializer == "text"  # not json, which would give back a plain str
    assert stored_files(saved.content.uri) == [file_name]
    loaded = load_artifact(store, saved.content.uri, saved.materializer, saved.data_type)
    assert type(loaded) is type(value) and loaded == value
    assert saved.metadata["visualization"] == {"kind": kind, "text": str(value)}


def test_text_artifacts_through_a_pipeline() -> None:
    @step
    def report(
        accuracy: float = 0.93,
    ) -> tuple[
        Annotated[HTMLString, "page"],
        Annotated[MarkdownString, "notes"],
        Annotated[CSVString, "table"],
    ]:
        rows = "\n".join(f"{i},{i * i}" for i in range(100))
        return (
            HTMLString(f"<b>{accuracy}</b>"),
            MarkdownString(f"**{accuracy}**"),
            CSVString(f"n,square\n{rows}\n"),
        )

    @step
    def read(page: HTMLString, notes: MarkdownString, table: CSVString) -> str:
        assert isinstance(page, HTMLString) and isinstance(notes, MarkdownString)
        assert isinstance(table, CSVString)
        return f"{page}|{notes}|{table.count(chr(10))}"

    @pipeline(name="texts")
    def texts() -> None:
        read(*report())

    run = texts()
    outputs = run.steps["report"].outputs
    assert {v.materializer for v in outputs.values()} == {"text"}
    assert run.steps["read"].outputs["output"].load() == "<b>0.93</b>|**0.93**|101"
    table = outputs["table"].metadata["visualization"]
    assert table["kind"] == "table" and table["columns"] == ["n", "square"]
    assert table["rows"][:2] == [["0", "0"], ["1", "1"]] and len(table["rows"]) == 20
    assert outputs["page"].load() == HTMLString("<b>0.93</b>")


def test_text_visualization_is_bounded(store: LocalArtifactStore) -> None:
    huge = MarkdownString("é" * 200_000)
    saved = save_artifact(store, huge, where="test")
    shown = saved.metadata["visualization"]
    assert shown["truncated"] is True and huge.startswith(shown["text"])
    assert len(json.dumps(shown)) <= 64 * 1024


def test_text_loads_only_the_four_known_types(store: LocalArtifactStore) -> None:
    saved = save_artifact(store, HTMLString("<i>x</i>"), where="test")
    # A row naming another class does not make the load build it.
    loaded = load_artifact(store, saved.content.uri, saved.materializer, "os.system")
    assert type(loaded) is HTMLString


def test_can_handle_imports_nothing() -> None:
    """Asking which materializer stores a type imports none of these libraries."""
    code = (
        "import sys\n"
        "from gristmill.artifacts.materializers import base\n"
        "for m in base.registered(): m.can_handle(int); m.can_handle(dict)\n"
        "print(sorted(n for n in ('pyspark', 'dask', 'PIL') if n in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
