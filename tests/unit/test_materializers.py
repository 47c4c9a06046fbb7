"""Every built-in materializer round-trips its types; content addressing stores bytes once;
pickle is the logged last resort and refuses untrusted stores."""

import enum
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet
import pydantic
import pytest

from gristmill.artifacts import ArtifactStore, LocalArtifactStore, load_artifact, save_artifact
from gristmill.artifacts.materializers import materializer_key
from gristmill.artifacts.store import hash_directory
from gristmill.errors import UnsafeArtifactError


class Color(enum.IntEnum):
    RED = 1


class Config(pydantic.BaseModel):
    name: str
    layers: list[int]


class Opaque:
    def __init__(self, value: int) -> None:
        self.value = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Opaque) and other.value == self.value


@pytest.fixture
def store(tmp_path: Path) -> LocalArtifactStore:
    return LocalArtifactStore(str(tmp_path / "artifacts"))


def round_trip(store: ArtifactStore, value: Any) -> tuple[Any, Any]:
    saved = save_artifact(store, value, where="test")
    return load_artifact(store, saved.content.uri, saved.materializer, saved.data_type), saved


@pytest.mark.parametrize(
    ("value", "materializer"),
    [
        (3, "json"),
        (2.5, "json"),
        ("text", "json"),
        (True, "json"),
        (None, "json"),
        ([1, "a", None], "json"),
        ({"a": [1, 2], "b": {"c": 1.5}}, "json"),
        ((1, 2, "x"), "json"),
        ({3, 1, 2}, "json"),
        (frozenset({"a"}), "json"),
        (Color.RED, "json"),
        (b"\x00\x01bytes", "bytes"),
        (bytearray(b"ab"), "bytes"),
        ({1: "non-string key"}, "cloudpickle"),
        ([(1, 2)], "cloudpickle"),
        (Opaque(5), "cloudpickle"),
    ],
)
def test_round_trips(store: LocalArtifactStore, value: Any, materializer: str) -> None:
    loaded, saved = round_trip(store, value)
    assert saved.materializer == materializer
    assert loaded == value
    assert type(loaded) is type(value)


def test_numpy_is_npy_memory_mapped_copy_on_write(store: LocalArtifactStore) -> None:
    array = np.arange(12, dtype=np.float32).reshape(3, 4)
    loaded, saved = round_trip(store, array)
    assert saved.materializer == "numpy"
    assert (Path(saved.content.uri) / "array.npy").exists()
    assert isinstance(loaded, np.memmap)
    np.testing.assert_array_equal(loaded, array)
    loaded[0, 0] = 99  # a step may change what it got ...
    again = load_artifact(store, saved.content.uri, saved.materializer, saved.data_type)
    assert again[0, 0] == 0  # ... without touching the stored artifact
    assert {k: v for k, v in saved.metadata.items() if k != "visualization"} == {
        "shape": [3, 4],
        "dtype": "float32",
    }
    assert saved.metadata["visualization"]["kind"] == "fields"
    scalar, _ = round_trip(store, np.array(5))
    assert scalar == 5
    masked, saved_masked = round_trip(store, np.ma.masked_array([1, 2, 3], mask=[0, 1, 0]))
    assert saved_masked.materializer == "cloudpickle"  # the mask survives
    assert masked.mask.tolist() == [False, True, False]
    for other in (
        np.array(7),
        np.zeros((0, 3)),
        np.asfortranarray(np.arange(6).reshape(2, 3)),
        np.arange(10)[::2],
    ):
        back, _ = round_trip(store, other)
        np.testing.assert_array_equal(back, other)
        assert back.shape == other.shape
    objects, saved_objects = round_trip(store, np.array([{"a": 1}], dtype=object))
    assert saved_objects.materializer == "cloudpickle"
    assert objects[0] == {"a": 1}


def test_pandas_and_arrow_are_parquet(store: LocalArtifactStore) -> None:
    frame = pd.DataFrame({"x": [1, 2, 3], "y": ["a", "b", "c"]}, index=[10, 20, 30])
    loaded, saved = round_trip(store, frame)
    assert saved.materializer == "pandas"
    pd.testing.assert_frame_equal(loaded, frame)
    assert saved.metadata["rows"] == 3
    assert "3 rows x 2 columns" in saved.preview
    series = pd.Series([1.5, 2.5], name="s")
    loaded_series, _ = round_trip(store, series)
    pd.testing.assert_series_equal(loaded_series, series)
    table = pa.table({"a": [1, 2]})
    loaded_table, saved_table = round_trip(store, table)
    assert saved_table.materializer == "pyarrow"
    assert loaded_table.equals(table)


def test_parquet_files_are_hashed_while_written(store: LocalArtifactStore) -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"f": rng.random(50_000), "label": rng.choice(["a", "b"], 50_000)})
    loaded, saved = round_trip(store, frame)
    pd.testing.assert_frame_equal(loaded, frame)
    parquet = Path(saved.content.uri) / "data.parquet"
    assert saved.content.content_hash == hash_directory(parquet.parent)[0]
    metadata = pa.parquet.ParquetFile(parquet).metadata.row_group(0)
    encodings = {metadata.column(i).path_in_schema: metadata.column(i).encodings for i in (0, 1)}
    assert "RLE_DICTIONARY" not in encodings["f"]  # random floats: no dictionary to build
    assert "RLE_DICTIONARY" in encodings["label"]


def test_frames_parquet_cannot_round_trip_fall_back_to_pickle(store: LocalArtifactStore) -> None:
    numbered = pd.DataFrame(np.arange(6.0).reshape(2, 3))  # integer column names round-trip
    loaded, saved = round_trip(store, numbered)
    assert saved.materializer == "pandas"
    pd.testing.assert_frame_equal(loaded, numbered)
    for odd in (
        pd.DataFrame({1: [1], "a": [2]}),  # mixed names would come back as strings
        pd.DataFrame({"x": [1, "a"]}),  # an object column Arrow cannot type
    ):
        loaded, saved = round_trip(store, odd)
        assert saved.materializer == "cloudpickle"
        pd.testing.assert_frame_equal(loaded, odd)


def test_pydantic_models_are_json(store: LocalArtifactStore) -> None:
    config = Config(name="net", layers=[3, 4])
    loaded, saved = round_trip(store, config)
    assert saved.materializer == "pydantic"
    assert loaded == config
    assert (Path(saved.content.uri) / "model.json").read_text() == config.model_dump_json()


def test_same_bytes_are_stored_once(store: LocalArtifactStore) -> None:
    first = save_artifact(store, {"a": 1}, where="test")
    second = save_artifact(store, {"a": 1}, where="test")
    assert first.content == second.content
    stored = [p for p in Path(store.root).glob("*/*") if p.parent.name != ".staging"]
    assert len(stored) == 1
    assert not [p for p in (Path(store.root) / ".staging").rglob("*") if p.is_file()]


def test_leftover_staging_from_killed_processes_is_swept(tmp_path: Path) -> None:
    import os
    import time

    root = tmp_path / "artifacts"
    leftover = root / ".staging" / "killed-midway"
    leftover.mkdir(parents=True)
    (leftover / "partial.npy").write_bytes(b"half")
    old = time.time() - 2 * 3600
    os.utime(leftover, (old, old))
    fresh = root / ".staging" / "another-process-writing-now"
    fresh.mkdir()
    save_artifact(LocalArtifactStore(str(root)), [1, 2], where="test")
    assert not leftover.exists()
    assert fresh.exists()


def test_pickle_fallback_is_logged_and_verified_from_untrusted_stores(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gristmill import artifacts

    artifacts._warned_pickle.clear()
    trusted = LocalArtifactStore(str(tmp_path / "a"))
    with caplog.at_level(logging.WARNING, logger="gristmill"):
        saved = save_artifact(trusted, Opaque(1), where="step 'x', output 'y'")
    assert "no safe materializer" in caplog.text and "Opaque" in caplog.text
    untrusted = LocalArtifactStore(str(tmp_path / "a"), trusted=False)
    args = (untrusted, saved.content.uri, saved.materializer, saved.data_type)
    # the bytes gristmill wrote, vouched for by the hash it recorded: loaded
    assert load_artifact(*args, saved.content.content_hash) == Opaque(1)
    # no hash to check, or bytes changed behind gristmill's back: refused
    with pytest.raises(UnsafeArtifactError, match="no recorded content hash vouches for it"):
        load_artifact(*args)
    pickled = Path(saved.content.uri) / "value.pkl"
    import cloudpickle

    pickled.write_bytes(cloudpickle.dumps(Opaque(666)))
    with pytest.raises(UnsafeArtifactError, match="do not match the content hash"):
        load_artifact(*args, saved.content.content_hash)
    monkeypatch.setenv("GRISTMILL_ALLOW_PICKLE", "1")
    assert load_artifact(*args) == Opaque(666)  # explicitly opted in


def test_materializer_key_of_declared_types() -> None:
    assert materializer_key(int) == "json@1"
    assert materializer_key(np.ndarray) == "numpy@1"
    assert materializer_key(pd.DataFrame) == "pandas@2"
    assert materializer_key(Any) == "auto"
    assert materializer_key(object) == "auto"
    assert materializer_key(Opaque) == "cloudpickle@1"


def test_fsspec_artifact_store_round_trip(tmp_path: Path) -> None:
    """The generic fsspec store (what remote flavors build on), over fsspec's local filesystem."""
    store = ArtifactStore(f"file://{tmp_path / 'remote'}", trusted=True)
    array = np.arange(5)
    loaded, saved = round_trip(store, array)
    np.testing.assert_array_equal(loaded, array)
    assert store.exists(saved.content.uri)
    assert store.fs.exists(f"{saved.content.uri}/.gristmill-complete")
    again = save_artifact(store, array, where="test")
    assert again.content == saved.content
    store.write_text(f"{store.root}/logs/r/s.log", "hello")
    assert store.read_text(f"{store.root}/logs/r/s.log") == "hello"


def test_the_documented_materializer_example_works(
    store: LocalArtifactStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    import scipy.sparse

    from gristmill.artifacts.materializers import base

    docs = (Path(__file__).parents[2] / "docs" / "materializers.md").read_text()
    example = docs.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, Any] = {}
    exec(compile(example, "docs/materializers.md", "exec"), namespace)
    sparse_materializer = namespace["SparseMaterializer"]
    monkeypatch.setattr(base, "_registry", [sparse_materializer, *base.registered()])
    monkeypatch.setattr(base, "_by_type", {})
    matrix = scipy.sparse.random(200, 100, density=0.05, format="csr", random_state=0)
    loaded, saved = round_trip(store, matrix)
    assert saved.materializer == "scipy-sparse"
    assert saved.metadata == {"shape": [200, 100], "nnz": matrix.nnz}
    assert saved.content.content_hash == hash_directory(Path(saved.content.uri))[0]
    assert (loaded != matrix).nnz == 0
