"""scikit-learn estimators and pipelines: skops (no code runs on load) when it is installed,
joblib (pickle, so only from trusted stores) otherwise.

A skops file names the types it rebuilds; before loading, every type skops itself does not
trust must be a class of scikit-learn, numpy or scipy (outside their testing and file I/O
modules) or be allowed by name in ``GRISTMILL_SKOPS_TRUSTED``: a file that names anything
else is refused, whoever wrote it. This module imports none of those libraries until a value
is saved or loaded; ``model_fields`` is the visualization the model materializers share.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from gristmill.artifacts.materializers.base import (
    CannotMaterialize,
    HashingFile,
    Materializer,
    Visualization,
    check_library_stamp,
    clip,
    data_type_name,
    module_loaded,
    write_library_stamp,
)
from gristmill.errors import MaterializerError, MissingIntegrationError

logger = logging.getLogger("gristmill")

SKOPS_FILE = "model.skops"
JOBLIB_FILE = "model.joblib"
TRUSTED_ENV = "GRISTMILL_SKOPS_TRUSTED"
_OWN_PACKAGES = frozenset({"sklearn", "numpy", "scipy"})
# Modules of those packages whose classes read or write files or run code given as text: a
# model naming them is not scikit-learn's own business and needs the explicit allow-list.
_NOT_TRUSTED_PARTS = frozenset(
    {"testing", "_testing", "_private", "distutils", "f2py", "ctypeslib", "io", "_io"}
)
PARAMETER_CHARS = 100
MAX_PARAMETERS = 50


def _is_estimator(data_type: type) -> bool:
    base = module_loaded("sklearn.base")
    return base is not None and issubclass(data_type, base.BaseEstimator)


def skops_installed() -> bool:
    """Whether skops can be imported (looked up, not imported)."""
    return importlib.util.find_spec("skops") is not None


class SklearnMaterializer(Materializer):
    """Fitted scikit-learn estimators and pipelines in the skops format (``model.skops``)."""

    name = "sklearn"
    priority = 25  # above the built-ins; below XGBoost/LightGBM, whose wrappers are estimators

    def __init__(self) -> None:
        self._saved_bytes: int | None = None

    @classmethod
    def can_handle(cls, data_type: type) -> bool:
        return _is_estimator(data_type) and skops_installed()

    def save(self, value: Any, directory: Path) -> dict[str, str]:
        import skops.io  # type: ignore[import-untyped]

        path = directory / SKOPS_FILE
        try:
            with HashingFile(path) as sink:
                skops.io.dump(value, sink)
        except Exception as exc:
            # Objects skops cannot describe go to the next materializer (logged there).
            logger.info("skops cannot store a %s (%s)", data_type_name(type(value)), exc)
            raise CannotMaterialize from exc
        refused = _refused_types(skops.io.get_untrusted_types(file=path))
        if refused:
            # It would not load back without an allow-list entry; the fallback keeps it whole.
            logger.warning(
                "a %s names types gristmill does not trust to load from skops: %s; to store it "
                "with skops, allow them: %s=%s",
                data_type_name(type(value)),
                ", ".join(refused),
                TRUSTED_ENV,
                ",".join(refused),
            )
            raise CannotMaterialize
        write_library_stamp(directory, "scikit-learn", skops=_version("skops"))
        self._saved_bytes = path.stat().st_size
        return {SKOPS_FILE: sink.hexdigest()}

    def load(self, directory: Path, data_type: str) -> Any:
        skops_io = _import("skops.io", "skops", "loading a scikit-learn model")
        _import("sklearn", "scikit-learn", "loading a scikit-learn model")
        check_library_stamp(directory, same="minor")
        path = directory / SKOPS_FILE
        untrusted = skops_io.get_untrusted_types(file=path)
        refused = _refused_types(untrusted)
        if refused:
            raise MaterializerError(
                f"refusing to load the scikit-learn model at {directory}: it names types that "
                f"are not scikit-learn's, numpy's or scipy's own: {', '.join(refused)}. If you "
                f"trust them, allow them by name: {TRUSTED_ENV}={','.join(refused)}"
            )
        return skops_io.load(path, trusted=untrusted)

    def describe(self, value: Any) -> tuple[str, dict[str, Any]]:
        return describe_model(value)

    def visualize(self, value: Any) -> Visualization | None:
        return model_fields(value, self._saved_bytes, sklearn_parameters(value))


class SklearnJoblibMaterializer(Materializer):
    """scikit-learn models with joblib where skops is not installed: pickle, so loading them
    follows the trust rules of every pickle-based artifact."""

    name = "sklearn-joblib"
    priority = 24
    safe = False

    def __init__(self) -> None:
        self._saved_bytes: int | None = None

    @classmethod
    def can_handle(cls, data_type: type) -> bool:
        return _is_estimator(data_type) and not skops_installed()

    def save(self, value: Any, directory: Path) -> None:
        import joblib  # type: ignore[import-untyped]

        joblib.dump(value, directory / JOBLIB_FILE)
        write_library_stamp(directory, "scikit-learn", joblib=_version("joblib"))
        self._saved_bytes = (directory / JOBLIB_FILE).stat().st_size

    def load(self, directory: Path, data_type: str) -> Any:
        joblib = _import("joblib", "joblib", "loading a scikit-learn model")
        check_library_stamp(directory, same="minor")
        return joblib.load(directory / JOBLIB_FILE)

    def describe(self, value: Any) -> tuple[str, dict[str, Any]]:
        return describe_model(value)

    def visualize(self, value: Any) -> Visualization | None:
        return model_fields(value, self._saved_bytes, sklearn_parameters(value))


def trusted_names() -> set[str]:
    """The allow-list: type names (``pkg.mod.Class``) or packages (``pkg.*``) in
    ``GRISTMILL_SKOPS_TRUSTED``, comma-separated."""
    return {n.strip() for n in os.environ.get(TRUSTED_ENV, "").split(",") if n.strip()}


def _refused_types(untrusted: Iterable[str]) -> list[str]:
    """Of the types skops does not trust by default, those gristmill does not trust either."""
    allowed = trusted_names()
    return [name for name in untrusted if not _trusted(name, allowed)]


def _trusted(name: str, allowed: set[str]) -> bool:
    if name in allowed:
        return True
    parts = name.split(".")
    if any(".".join(parts[:i]) + ".*" in allowed for i in range(1, len(parts))):
        return True
    # Classes only (CamelCase by these libraries' convention): a function named in a model is
    # called with the model's stored arguments, so functions need the explicit allow-list.
    return (
        len(parts) > 1
        and parts[0] in _OWN_PACKAGES
        and parts[-1][:1].isupper()
        and not _NOT_TRUSTED_PARTS.intersection(parts[:-1])
    )


def _import(module: str, package: str, feature: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        extra = {"scikit-learn": "sklearn", "skops": "sklearn", "joblib": "sklearn"}
        raise MissingIntegrationError(package, extra.get(package, package), feature) from None


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


def describe_model(value: Any) -> tuple[str, dict[str, Any]]:
    meta: dict[str, Any] = {"class": data_type_name(type(value))}
    n_features = _n_features(value)
    if n_features is not None:
        meta["n_features"] = n_features
    return clip(f"{type(value).__name__}" + _short_repr(value)), meta


def _short_repr(value: Any) -> str:
    try:
        text = repr(value)
    except Exception:
        return ""
    name = type(value).__name__
    return text[len(name) :] if text.startswith(name) else f" {text}"


def sklearn_parameters(value: Any) -> dict[str, Any]:
    try:
        return dict(value.get_params(deep=False))
    except Exception:
        return {}


def _n_features(value: Any) -> int | None:
    for attribute in ("n_features_in_", "n_features_"):
        try:
            found = getattr(value, attribute, None)
        except Exception:  # a property of an unfitted model may raise anything
            continue
        if found is not None and (
            isinstance(found, int) or type(found).__name__.startswith(("int", "uint"))
        ):
            return int(found)
    return None


def json_parameters(parameters: Mapping[str, Any]) -> dict[str, Any]:
    """At most ``MAX_PARAMETERS`` parameters as JSON: numbers, booleans and short strings as
    they are, anything else as its clipped repr."""
    shown: dict[str, Any] = {}
    for key in sorted(parameters, key=str)[:MAX_PARAMETERS]:
        shown[clip(str(key), PARAMETER_CHARS)] = json_value(parameters[key])
    if len(parameters) > MAX_PARAMETERS:
        shown["..."] = f"{len(parameters) - MAX_PARAMETERS} more"
    return shown


def json_value(value: Any) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if abs(value) < 2**53 else str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return clip(value, PARAMETER_CHARS)
    try:
        text = repr(value)
    except Exception:
        text = f"<{type(value).__name__}>"
    return clip(text, PARAMETER_CHARS)


def model_fields(
    value: Any,
    size: int | None,
    parameters: Mapping[str, Any],
    **extra: Any,
) -> Visualization:
    """A model as people read it: its class, parameters, stored size and feature count."""
    fields: dict[str, Any] = {"class": data_type_name(type(value))}
    fields["parameters"] = json_parameters(parameters)
    if size is not None:
        fields["size"] = size
    n_features = extra.pop("n_features", None)
    if n_features is None:
        n_features = _n_features(value)
    if n_features is not None:
        fields["n_features"] = int(n_features)
    steps = getattr(value, "steps", None)
    if isinstance(steps, list) and all(isinstance(s, tuple) and len(s) >= 2 for s in steps):
        fields["steps"] = [
            [clip(str(s[0]), PARAMETER_CHARS), type(s[1]).__name__] for s in steps[:MAX_PARAMETERS]
        ]
    fields.update({k: json_value(v) for k, v in extra.items() if v is not None})
    return {"kind": "fields", "fields": fields}


# The fitted state of a model wrapper (parameters, classes, evaluation results) as JSON that
# names no type: arrays and numpy scalars are rebuilt from their dtype, never from a class.
_TAGS = frozenset({"__tuple__", "__items__", "__ndarray__", "__scalar__"})
_ARRAY_KINDS = frozenset("biufU")


def encode_state(value: Any) -> Any:
    """``value`` as JSON-able data that ``decode_state`` turns back into an equal value;
    CannotMaterialize for anything else (a callable, an arbitrary object)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, list):
        return [encode_state(v) for v in value]
    if isinstance(value, tuple):
        return {"__tuple__": [encode_state(v) for v in value]}
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value) and not _TAGS.intersection(value):
            return {k: encode_state(v) for k, v in value.items()}
        return {"__items__": [[encode_state(k), encode_state(v)] for k, v in value.items()]}
    np = module_loaded("numpy")
    if np is not None and isinstance(value, np.ndarray) and type(value) is np.ndarray:
        plain = value.dtype.kind in _ARRAY_KINDS or (
            value.dtype.kind == "O"
            and all(isinstance(v, (str, int, float, bool)) for v in value.reshape(-1).tolist())
        )
        if plain:
            return {
                "__ndarray__": value.tolist(),
                "dtype": value.dtype.str,
                "shape": list(value.shape),
            }
    if np is not None and isinstance(value, np.generic) and value.dtype.kind in _ARRAY_KINDS:
        return {"__scalar__": value.item(), "dtype": value.dtype.str}
    raise CannotMaterialize(f"cannot store a {data_type_name(type(value))} as JSON")


def decode_state(data: Any) -> Any:
    if isinstance(data, list):
        return [decode_state(v) for v in data]
    if not isinstance(data, dict):
        return data
    if "__tuple__" in data:
        return tuple(decode_state(v) for v in data["__tuple__"])
    if "__items__" in data:
        return {_hashable(decode_state(k)): decode_state(v) for k, v in data["__items__"]}
    if "__ndarray__" in data or "__scalar__" in data:
        import numpy as np

        dtype = np.dtype(str(data["dtype"]))
        if dtype.kind not in _ARRAY_KINDS and dtype.kind != "O":
            raise MaterializerError(f"unexpected array dtype {dtype} in a stored model state")
        if "__scalar__" in data:
            return dtype.type(data["__scalar__"])
        return np.array(data["__ndarray__"], dtype=dtype).reshape(data.get("shape", -1))
    return {k: decode_state(v) for k, v in data.items()}


def _hashable(key: Any) -> Any:
    return tuple(_hashable(k) for k in key) if isinstance(key, (list, tuple)) else key
