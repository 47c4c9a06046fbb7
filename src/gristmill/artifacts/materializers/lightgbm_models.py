"""LightGBM models as LightGBM's own text model (``Booster.save_model``): no code runs on load.

A ``Booster`` is stored as it is (every iteration, with its best iteration recorded). LightGBM
has no loader for its scikit-learn wrappers (``LGBMClassifier``, ``LGBMRegressor``, ...), so a
wrapper is stored as its booster plus the rest of its fitted state as plain JSON
(``state.json``: parameters, classes, evaluation results), and rebuilt from them: a new wrapper
with that state and the loaded booster. That state is LightGBM's own attributes, so a wrapper
loads only under the LightGBM minor version that wrote it. A wrapper holding anything but plain
data (a callable objective) goes to the next materializer.
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

MODEL_FILE = "model.txt"
STATE_FILE = "state.json"
_BOOSTER = "_Booster"
_LABEL_ENCODER = "_le"


class LightGBMMaterializer(Materializer):
    name = "lightgbm"
    priority = 30  # the wrappers are scikit-learn estimators too: ahead of skops

    def __init__(self) -> None:
        self._saved_bytes: int | None = None

    @classmethod
    def can_handle(cls, data_type: type) -> bool:
        lgb = module_loaded("lightgbm")
        return lgb is not None and issubclass(data_type, (lgb.Booster, lgb.LGBMModel))

    def save(self, value: Any, directory: Path) -> None:
        import lightgbm as lgb

        if isinstance(value, lgb.LGBMModel):
            if not value.__sklearn_is_fitted__():
                raise CannotMaterialize  # no booster yet: nothing native to store
            booster = value.booster_
            state = dict(vars(value))
            state.pop(_BOOSTER, None)
            encoder = state.pop(_LABEL_ENCODER, None)
            stored: dict[str, Any] = {
                "wrapper": data_type_name(type(value)),
                "state": encode_state(state),
            }
            if encoder is not None:
                stored["label_encoder"] = {
                    "class": data_type_name(type(encoder)),
                    "classes": encode_state(encoder.classes_),
                }
            text = json.dumps(stored, sort_keys=True)
        else:
            booster, text = value, None
        booster.save_model(directory / MODEL_FILE, num_iteration=-1)  # every tree, not the best
        if text is not None:
            (directory / STATE_FILE).write_text(text, encoding="utf-8")
        write_library_stamp(directory, "lightgbm", best_iteration=int(booster.best_iteration))
        self._saved_bytes = (directory / MODEL_FILE).stat().st_size

    def load(self, directory: Path, data_type: str) -> Any:
        try:
            import lightgbm as lgb
        except ImportError:
            raise MissingIntegrationError(
                "lightgbm", "lightgbm", "loading a LightGBM model"
            ) from None

        state_path = directory / STATE_FILE
        stamp = check_library_stamp(directory, same="minor" if state_path.is_file() else "major")
        booster = lgb.Booster(model_file=directory / MODEL_FILE)
        booster.best_iteration = int(stamp.get("best_iteration", booster.best_iteration))
        if not state_path.is_file():
            return booster
        stored = json.loads(state_path.read_text(encoding="utf-8"))
        wrapper = class_named(str(stored.get("wrapper", data_type)), lgb.LGBMModel)
        if wrapper is None:
            raise MaterializerError(
                f"the LightGBM model at {directory} is a {stored.get('wrapper')}, a class that "
                "is not imported in this process: import the module that defines it first"
            )
        model: Any = object.__new__(wrapper)  # the state below is all of it
        model.__dict__.update(decode_state(stored["state"]))
        model.__dict__[_BOOSTER] = booster
        encoder = stored.get("label_encoder")
        if encoder is not None:
            model.__dict__[_LABEL_ENCODER] = _label_encoder(encoder)
        return model

    def describe(self, value: Any) -> tuple[str, dict[str, Any]]:
        booster = _booster(value)
        meta: dict[str, Any] = {"class": data_type_name(type(value))}
        if booster is not None:
            meta["n_features"] = booster.num_feature()
            meta["trees"] = booster.num_trees()
        trees = f", {meta['trees']} trees" if "trees" in meta else ""
        return clip(f"{type(value).__name__}{trees}"), meta

    def visualize(self, value: Any) -> Visualization | None:
        booster = _booster(value)
        if hasattr(value, "get_params"):
            parameters = value.get_params(deep=False)
        else:
            parameters = dict(getattr(booster, "params", None) or {})
        return model_fields(
            value,
            self._saved_bytes,
            parameters,
            n_features=booster.num_feature() if booster is not None else None,
            trees=booster.num_trees() if booster is not None else None,
        )


def _booster(value: Any) -> Any:
    if hasattr(value, "booster_"):
        try:
            return value.booster_
        except Exception:  # an unfitted wrapper
            return None
    return value


def _label_encoder(stored: dict[str, Any]) -> Any:
    """The fitted label encoder of a classifier, of a scikit-learn ``LabelEncoder`` class that
    LightGBM's import already loaded (the recorded name is never imported)."""
    from sklearn.preprocessing import LabelEncoder

    cls = class_named(str(stored.get("class")), LabelEncoder)
    if cls is None:
        raise MaterializerError(
            f"the label encoder {stored.get('class')} of this LightGBM model is not a "
            "scikit-learn LabelEncoder imported here"
        )
    encoder = cls()
    encoder.classes_ = decode_state(stored["classes"])
    return encoder
