"""XGBoost models in XGBoost's own UBJSON format (``Booster.save_model``): no code runs on load.

A ``Booster`` is stored as it is; a scikit-learn wrapper (``XGBClassifier``, ``XGBRegressor``,
...) as its booster plus its constructor parameters (``params.json``), and rebuilt the way
XGBoost documents: a new wrapper with those parameters, then ``load_model``. A wrapper whose
parameters are not plain data (a callable objective, callbacks) goes to the next materializer.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gristmill.artifacts.materializers.base import (
    CannotMaterialize,
    Materializer,
    Visualization,
    check_library_stamp,
    class_named,
    clip,
    data_type_name,
    module_loaded,
    write_library_stamp,
)
from gristmill.artifacts.materializers.sklearn_models import (
    decode_state,
    encode_state,
    model_fields,
)
from gristmill.errors import MaterializerError, MissingIntegrationError

MODEL_FILE = "model.ubj"
PARAMS_FILE = "params.json"


class XGBoostMaterializer(Materializer):
    name = "xgboost"
    priority = 30  # the wrappers are scikit-learn estimators too: ahead of skops

    def __init__(self) -> None:
        self._saved_bytes: int | None = None

    @classmethod
    def can_handle(cls, data_type: type) -> bool:
        xgb = module_loaded("xgboost")
        return xgb is not None and issubclass(data_type, (xgb.Booster, xgb.XGBModel))

    def save(self, value: Any, directory: Path) -> None:
        import xgboost as xgb

        if isinstance(value, xgb.XGBModel):
            params = {"wrapper": data_type_name(type(value))}
            params["params"] = encode_state(value.get_params(deep=False))
            text = json.dumps(params, sort_keys=True)
            if not value.__sklearn_is_fitted__():
                raise CannotMaterialize  # no booster yet: nothing native to store
            booster = value.get_booster()
            value.save_model(directory / MODEL_FILE)  # records the wrapper's kind too
            (directory / PARAMS_FILE).write_text(text, encoding="utf-8")
        else:
            booster = value
            booster.save_model(directory / MODEL_FILE)
        write_library_stamp(directory, "xgboost", rounds=booster.num_boosted_rounds())
        self._saved_bytes = (directory / MODEL_FILE).stat().st_size

    def load(self, directory: Path, data_type: str) -> Any:
        try:
            import xgboost as xgb
        except ImportError:
            raise MissingIntegrationError(
                "xgboost", "xgboost", "loading an XGBoost model"
            ) from None

        check_library_stamp(directory, same="major")
        params_path = directory / PARAMS_FILE
        if not params_path.is_file():
            return xgb.Booster(model_file=directory / MODEL_FILE)
        stored = json.loads(params_path.read_text(encoding="utf-8"))
        wrapper = class_named(str(stored.get("wrapper", data_type)), xgb.XGBModel)
        if wrapper is None:
            raise MaterializerError(
                f"the XGBoost model at {directory} is a {stored.get('wrapper')}, a class that is "
                "not imported in this process: import the module that defines it first"
            )
        model = wrapper(**decode_state(stored["params"]))
        model.load_model(directory / MODEL_FILE)
        return model

    def describe(self, value: Any) -> tuple[str, dict[str, Any]]:
        booster = _booster(value)
        meta: dict[str, Any] = {"class": data_type_name(type(value))}
        if booster is not None:
            meta["n_features"] = booster.num_features()
            meta["rounds"] = booster.num_boosted_rounds()
        rounds = f", {meta['rounds']} rounds" if "rounds" in meta else ""
        return clip(f"{type(value).__name__}{rounds}"), meta

    def visualize(self, value: Any) -> Visualization | None:
        booster = _booster(value)
        if hasattr(value, "get_params"):
            # None means "XGBoost's default" for every wrapper parameter: shown are the set ones.
            parameters = {k: v for k, v in value.get_params(deep=False).items() if v is not None}
        elif booster is not None:
            parameters = _booster_parameters(booster)
        else:
            parameters = {}
        return model_fields(
            value,
            self._saved_bytes,
            parameters,
            n_features=booster.num_features() if booster is not None else None,
            rounds=booster.num_boosted_rounds() if booster is not None else None,
        )


def _booster(value: Any) -> Any:
    if hasattr(value, "get_booster"):
        try:
            return value.get_booster()
        except Exception:  # an unfitted wrapper
            return None
    return value


def _booster_parameters(booster: Any) -> dict[str, Any]:
    """The training parameters a Booster records (objective, booster, ...)."""
    config = json.loads(booster.save_config())
    learner = config.get("learner", {})
    found: dict[str, Any] = dict(learner.get("learner_train_param", {}))
    found.update(learner.get("gradient_booster", {}).get("tree_train_param", {}))
    return found
