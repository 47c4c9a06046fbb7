"""scikit-learn, XGBoost, LightGBM and polars values go between real pipeline steps in their
own formats (never pickle), load only under a compatible library version, and skops refuses
types nobody trusted; DataFrames, arrays and models carry a bounded visualization that
``gristmill artifacts show`` draws."""

from __future__ import annotations

import importlib
import json
import logging
import os
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from gristmill import pipeline, step
from gristmill.artifacts import LocalArtifactStore, load_artifact, save_artifact
from gristmill.artifacts.materializers.base import LIBRARY_STAMP, MAX_VISUALIZATION_BYTES
from gristmill.errors import MaterializerError

ML_LIBRARIES = ("sklearn", "skops", "xgboost", "lightgbm", "polars")


def needs(*modules: str) -> None:
    for module in modules:
        pytest.importorskip(module)


def test_ml_libraries_are_installed_in_ci() -> None:
    """`make test` installs the `ml` extra: in CI none of these tests may skip."""
    if not os.environ.get("CI"):
        pytest.skip("outside CI the ml extra is optional")
    missing = []
    for module in ML_LIBRARIES:
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(module)
    assert not missing, f'install the ml extra: pip install -e ".[ml]" (missing: {missing})'


# --- models between real steps ------------------------------------------------------------


def _data() -> tuple[Any, Any]:
    from sklearn.datasets import load_wine

    features, target = load_wine(return_X_y=True, as_frame=True)
    return features, target


def _fit(kind: str) -> Any:
    features, target = _data()
    if kind == "sklearn-pipeline":
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import StandardScaler

        model = Pipeline([("scale", StandardScaler()), ("classify", LogisticRegression())])
        return model.fit(features, target)
    if kind.startswith("xgboost"):
        import xgboost as xgb

        if kind == "xgboost-booster":
            matrix = xgb.DMatrix(features, label=target)
            return xgb.train({"objective": "multi:softprob", "num_class": 3}, matrix, 5)
        wrapper = xgb.XGBRegressor if kind == "xgboost-regressor" else xgb.XGBClassifier
        return wrapper(n_estimators=8, max_depth=3, learning_rate=0.3).fit(features, target)
    import lightgbm as lgb

    if kind == "lightgbm-booster":
        data = lgb.Dataset(features, label=target)
        params = {"objective": "multiclass", "num_class": 3, "verbose": -1}
        return lgb.train(params, data, num_boost_round=5)
    if kind == "lightgbm-regressor":
        return lgb.LGBMRegressor(n_estimators=8, verbose=-1).fit(features, target)
    names = target.map({0: "barolo", 1: "grignolino", 2: "barbera"})  # string classes
    return lgb.LGBMClassifier(n_estimators=8, num_leaves=7, verbose=-1).fit(features, names)


def _predict(model: Any) -> np.ndarray:
    features, _ = _data()
    if type(model).__name__ == "Booster":
        if type(model).__module__.startswith("xgboost"):
            import xgboost as xgb

            return np.asarray(model.predict(xgb.DMatrix(features)))
        return np.asarray(model.predict(features))
    predictions = np.asarray(model.predict(features))
    if hasattr(model, "predict_proba"):
        return np.column_stack([predictions.astype(str), model.predict_proba(features)])
    return predictions


@step
def train(kind: str) -> tuple[Annotated[Any, "model"], Annotated[np.ndarray, "expected"]]:
    model = _fit(kind)
    return model, _predict(model)  # what the model in memory predicts


@step
def predict(model: Any) -> Annotated[np.ndarray, "predictions"]:
    return _predict(model)  # what the model predicts after it went through the store


@pipeline
def train_then_predict(kind: str) -> None:
    model, _ = train(kind)
    predict(model)


MODELS = [
    ("sklearn-pipeline", "sklearn", ("sklearn", "skops")),
    ("xgboost-classifier", "xgboost", ("sklearn", "xgboost")),
    ("xgboost-regressor", "xgboost", ("sklearn", "xgboost")),
    ("xgboost-booster", "xgboost", ("sklearn", "xgboost")),
    ("lightgbm-classifier", "lightgbm", ("sklearn", "lightgbm")),
    ("lightgbm-regressor", "lightgbm", ("sklearn", "lightgbm")),
    ("lightgbm-booster", "lightgbm", ("sklearn", "lightgbm")),
]


def _no_pickle_warning(caplog: pytest.LogCaptureFixture) -> None:
    assert not [r for r in caplog.records if "pickle" in r.getMessage().lower()]


@pytest.mark.parametrize(("kind", "materializer", "modules"), MODELS, ids=[m[0] for m in MODELS])
def test_models_round_trip_between_steps(
    kind: str, materializer: str, modules: tuple[str, ...], caplog: pytest.LogCaptureFixture
) -> None:
    needs(*modules)
    caplog.set_level(logging.INFO, logger="gristmill")
    run = train_then_predict(kind=kind)
    assert run.status == "completed"
    model = run.steps["train"].outputs["model"]
    assert model.materializer == materializer  # never the pickle fallback
    _no_pickle_warning(caplog)
    expected = run.steps["train"].outputs["expected"].load()
    np.testing.assert_array_equal(run.steps["predict"].output().load(), expected)
    np.testing.assert_array_equal(_predict(model.load()), expected)  # loaded afresh here
    assert not list(model.local_directory().glob("*.pkl"))
    shown = model.metadata["visualization"]
    assert shown["kind"] == "fields"
    fields = shown["fields"]
    assert fields["class"].endswith(type(model.load()).__name__)
    assert fields["n_features"] == 13 and fields["size"] > 0
    assert isinstance(fields["parameters"], dict)


def test_wrappers_keep_their_parameters_and_classes() -> None:
    needs("sklearn", "xgboost", "lightgbm")
    run = train_then_predict(kind="xgboost-classifier")
    xgb_model = run.steps["train"].output("model").load()
    assert xgb_model.get_params()["max_depth"] == 3 and xgb_model.n_estimators == 8
    run = train_then_predict(kind="lightgbm-classifier")
    lgb_model = run.steps["train"].output("model").load()
    assert list(lgb_model.classes_) == ["barbera", "barolo", "grignolino"]
    assert lgb_model.get_params()["num_leaves"] == 7
    assert list(lgb_model.feature_names_in_)[:1] == ["alcohol"]


@pytest.mark.parametrize(
    ("kind", "package", "modules"),
    [
        ("sklearn-pipeline", "scikit-learn", ("sklearn", "skops")),
        ("xgboost-classifier", "xgboost", ("sklearn", "xgboost")),
        ("lightgbm-booster", "lightgbm", ("sklearn", "lightgbm")),
    ],
)
def test_a_model_written_by_another_library_version_is_refused_clearly(
    kind: str, package: str, modules: tuple[str, ...]
) -> None:
    needs(*modules)
    run = train_then_predict(kind=kind)
    model = run.steps["train"].output("model")
    stamp_path = model.local_directory() / LIBRARY_STAMP
    stamp = json.loads(stamp_path.read_text())
    assert stamp["package"] == package
    stamp["version"] = "0.1.0"  # as if written by an ancient release
    stamp_path.write_text(json.dumps(stamp))
    with pytest.raises(MaterializerError) as caught:
        model.load()
    message = str(caught.value)
    assert f"written by {package} 0.1.0" in message
    assert f"pip install '{package}==0.1.0'" in message


def test_an_installed_version_too_new_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    needs("sklearn", "xgboost")
    import importlib.metadata

    run = train_then_predict(kind="xgboost-booster")
    model = run.steps["train"].output("model")
    real = importlib.metadata.version
    monkeypatch.setattr(
        importlib.metadata,
        "version",
        lambda name: "999.0.0" if name == "xgboost" else real(name),
    )
    with pytest.raises(MaterializerError, match=r"xgboost 999\.0\.0 is installed"):
        model.load()


# --- skops trust --------------------------------------------------------------------------


def _scaler_class() -> type:
    from sklearn.preprocessing import StandardScaler

    class HomemadeScaler(StandardScaler):
        """A type skops does not know: it must be allowed by name to load."""

    HomemadeScaler.__module__ = __name__
    HomemadeScaler.__qualname__ = "HomemadeScaler"
    globals()["HomemadeScaler"] = HomemadeScaler  # importable by name, as skops needs
    return HomemadeScaler


def test_skops_refuses_types_nobody_trusted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    needs("sklearn", "skops")
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    features, target = _data()
    scaler = _scaler_class()
    model = Pipeline([("scale", scaler()), ("classify", LogisticRegression())])
    model.fit(features, target)
    store = LocalArtifactStore(str(tmp_path / "artifacts"))
    name = f"{__name__}.HomemadeScaler"

    # Stored with skops it would not load back: the fallback takes it, and the log says how
    # to allow the type.
    monkeypatch.delenv("GRISTMILL_SKOPS_TRUSTED", raising=False)
    caplog.set_level(logging.WARNING, logger="gristmill")
    saved = save_artifact(store, model, where="test")
    assert saved.materializer != "sklearn"
    assert f"GRISTMILL_SKOPS_TRUSTED={name}" in caplog.text

    # Allowed by name, it goes to skops and loads back.
    monkeypatch.setenv("GRISTMILL_SKOPS_TRUSTED", f"somewhere.Else, {name}")
    saved = save_artifact(store, model, where="test")
    assert saved.materializer == "sklearn"
    args = (store, saved.content.uri, saved.materializer, saved.data_type)
    loaded = load_artifact(*args)
    np.testing.assert_array_equal(loaded.predict(features), model.predict(features))

    # Whoever loads it without that allowance is refused, with the type and the fix named.
    monkeypatch.delenv("GRISTMILL_SKOPS_TRUSTED")
    with pytest.raises(MaterializerError) as caught:
        load_artifact(*args)
    assert name in str(caught.value) and "GRISTMILL_SKOPS_TRUSTED=" in str(caught.value)

    monkeypatch.setenv("GRISTMILL_SKOPS_TRUSTED", f"{__name__}.*")  # a whole module
    assert type(load_artifact(*args)[0]).__name__ == "HomemadeScaler"


def test_which_skops_types_are_trusted(monkeypatch: pytest.MonkeyPatch) -> None:
    from gristmill.artifacts.materializers.sklearn_models import _refused_types

    monkeypatch.delenv("GRISTMILL_SKOPS_TRUSTED", raising=False)
    own = ["sklearn.tree._tree.Tree", "sklearn._loss.link.Interval", "scipy.sparse.CSR"]
    assert _refused_types(own) == []
    refused = [
        "numpy.testing._private.utils.runstring",  # a function that executes text
        "numpy.save",  # functions need the allow-list
        "scipy.io.FortranFile",  # file I/O
        "builtins.eval",
        "mypackage.Model",
        "sklearnx.Model",
    ]
    assert _refused_types(refused) == refused
    monkeypatch.setenv("GRISTMILL_SKOPS_TRUSTED", "mypackage.*,numpy.save")
    assert _refused_types(refused) == refused[:1] + refused[2:4] + refused[5:]


def test_joblib_fallback_is_pickle_based(tmp_path: Path) -> None:
    needs("sklearn")
    from sklearn.linear_model import LinearRegression

    from gristmill.artifacts.materializers.sklearn_models import SklearnJoblibMaterializer

    assert SklearnJoblibMaterializer.safe is False  # loads only under the pickle trust rules
    features, target = _data()
    model = LinearRegression().fit(features, target)
    materializer = SklearnJoblibMaterializer()
    materializer.save(model, tmp_path)
    loaded = materializer.load(tmp_path, "sklearn.linear_model._base.LinearRegression")
    np.testing.assert_array_equal(loaded.predict(features), model.predict(features))
    assert json.loads((tmp_path / LIBRARY_STAMP).read_text())["package"] == "scikit-learn"


# --- polars -------------------------------------------------------------------------------


@step
def make_frame() -> Annotated[Any, "frame"]:
    import polars as pl

    return pl.DataFrame(
        {
            "id": [1, 2, 3, None],
            "name": ["a", "b", None, "d"],
            "score": [0.5, float("nan"), 2.5, -1.0],
            "when": pl.date_range(pl.date(2026, 1, 1), pl.date(2026, 1, 4), eager=True),
            "kind": pl.Series(["x", "y", "x", "y"], dtype=pl.Categorical),
        }
    )


@step
def double(frame: Any) -> Annotated[Any, "doubled"]:
    import polars as pl

    return frame.with_columns(pl.col("score") * 2)


@pipeline
def polars_pipeline() -> None:
    double(make_frame())


def test_polars_frames_round_trip_between_steps(caplog: pytest.LogCaptureFixture) -> None:
    needs("polars")
    import polars as pl
    from polars.testing import assert_frame_equal

    caplog.set_level(logging.INFO, logger="gristmill")
    run = polars_pipeline()
    frame = run.steps["make_frame"].output()
    assert frame.materializer == "polars"
    _no_pickle_warning(caplog)
    original = make_frame()  # outside a pipeline the step is the plain function
    assert_frame_equal(frame.load(), original)
    doubled = run.steps["double"].output()
    assert doubled.materializer == "polars"
    assert_frame_equal(doubled.load(), original.with_columns(pl.col("score") * 2))
    assert frame.metadata["rows"] == 4
    assert frame.metadata["columns"] == ["id", "name", "score", "when", "kind"]
    assert "4 rows x 5 columns" in frame.preview
    sections = {
        s.get("title", "").split(" (")[0]: s for s in frame.metadata["visualization"]["sections"]
    }
    assert sections["shape"]["fields"] == {"rows": 4, "columns": 5}
    assert ["kind", "Categorical"] in sections["dtypes"]["rows"]
    assert sections["head"]["rows"][0][:2] == ["1", "a"]
    statistics = {row[0]: row[1:] for row in sections["statistics of numeric columns"]["rows"]}
    assert set(statistics) == {"id", "score"}
    assert statistics["id"] == [3, 2.0, 1.0, 1, 3]


def test_polars_series_comes_back_a_series(tmp_path: Path) -> None:
    needs("polars")
    import polars as pl
    from polars.testing import assert_series_equal

    store = LocalArtifactStore(str(tmp_path / "artifacts"))
    series = pl.Series("values", [1.5, 2.5, None])
    saved = save_artifact(store, series, where="test")
    assert saved.materializer == "polars"
    loaded = load_artifact(store, saved.content.uri, saved.materializer, saved.data_type)
    assert_series_equal(loaded, series)


# --- visualizations -----------------------------------------------------------------------


def _visualization(tmp_path: Path, value: Any) -> Any:
    saved = save_artifact(LocalArtifactStore(str(tmp_path / "artifacts")), value, where="test")
    shown = saved.metadata["visualization"]
    assert len(json.dumps(shown, allow_nan=False)) <= MAX_VISUALIZATION_BYTES
    return shown


def test_pandas_visualization_is_bounded_for_wide_and_long_frames(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.random((300_000, 120)), columns=[f"c{i}" * 40 for i in range(120)])
    frame["label"] = "x" * 500
    shown = _visualization(tmp_path, frame)
    sections = shown["sections"]
    assert sections[0]["fields"] == {"rows": 300_000, "columns": 121}
    dtypes, head, statistics = sections[1:]
    assert len(dtypes["rows"]) == 51 and dtypes["rows"][-1] == ["...", "71 more columns"]
    assert len(head["rows"]) == 10 and len(head["columns"]) == 20
    assert all(len(cell) <= 60 for row in head["rows"] for cell in row)
    assert len(statistics["rows"]) == 20
    assert "every 3th row: 100,000 of 300,000" in statistics["title"]
    mean = statistics["rows"][0][2]
    assert 0.45 < mean < 0.55


def test_pandas_visualization_shows_a_named_index_and_missing_values(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {"n": pd.array([1, None, 3], dtype="Int64"), "x": [np.nan, np.nan, np.nan]},
        index=pd.Index(["a", "b", "c"], name="key"),
    )
    sections = _visualization(tmp_path, frame)["sections"]
    assert sections[2]["columns"] == ["(index)", "n", "x"]
    assert sections[2]["rows"][1] == ["b", "<NA>", "nan"]
    statistics = {row[0]: row[1:] for row in sections[3]["rows"]}
    assert statistics["n"] == [2, 2.0, statistics["n"][2], 1, 3]
    assert statistics["x"] == [0, None, None, None, None]


def test_numpy_visualization(tmp_path: Path) -> None:
    fields = _visualization(tmp_path, np.array([[1.0, np.nan], [3.0, 5.0]]))["fields"]
    assert fields == {
        "shape": [2, 2],
        "dtype": "float64",
        "min": 1.0,
        "max": 5.0,
        "mean": 3.0,
        "nan": 1,
    }
    fields = _visualization(tmp_path, np.array([True, False, True]))["fields"]
    assert fields["true"] == 2
    fields = _visualization(tmp_path, np.array(["a", "b"]))["fields"]
    assert fields == {"shape": [2], "dtype": "<U1"}
    big = np.arange(3_000_000, dtype=np.int32).reshape(1000, 3000)[:, ::2]  # not contiguous
    fields = _visualization(tmp_path, big)["fields"]
    assert fields["min"] == 0 and 2_999_900 < fields["max"] <= 2_999_998  # of the sample
    assert fields["statistics_of"] == "every 15th value (100,000 values)"


# --- the CLI ------------------------------------------------------------------------------


@step
def tricky_frame() -> Annotated[pd.DataFrame, "tricky"]:
    return pd.DataFrame({"[bold]markup[/bold]": [1, 2], "text": ["\x1b[31mred", "[link=x]y"]})


@pipeline
def tricky_pipeline() -> None:
    tricky_frame()


def test_artifacts_show_draws_the_visualization_escaped(
    monkeypatch: pytest.MonkeyPatch, project: Any
) -> None:
    from gristmill.cli.main import cli

    monkeypatch.chdir(project.root)
    tricky_pipeline()
    runner = CliRunner()
    result = runner.invoke(cli, ["artifacts", "show", "tricky"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "visualization" in out and "dtypes" in out and "statistics" in out
    assert "[bold]markup[/bold]" in out  # shown as text, not read as markup
    assert "[link=x]y" in out
    assert "\x1b" not in out
    data = json.loads(
        runner.invoke(cli, ["artifacts", "show", "tricky", "--json"], catch_exceptions=False).output
    )
    assert data["metadata"]["visualization"]["kind"] == "sections"


def test_artifacts_show_draws_model_fields(monkeypatch: pytest.MonkeyPatch, project: Any) -> None:
    needs("sklearn", "xgboost")
    from gristmill.cli.main import cli

    monkeypatch.chdir(project.root)
    train_then_predict(kind="xgboost-classifier")
    result = CliRunner().invoke(cli, ["artifacts", "show", "model"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    for text in (
        "class",
        "xgboost.sklearn.XGBClassifier",
        "parameters",
        "max_depth = 3",
        "n_features = 13",
    ):
        assert text in result.output
