"""TensorFlow/Keras: Keras models in the ``.keras`` format, loaded with ``safe_mode=True`` (no
Python code from the file runs: a ``Lambda`` layer's pickled bytecode is refused), and
``tf.Tensor`` as ``.npy`` with its dtype recorded. TensorFlow and Keras are imported only to
store or load one of their values."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gristmill.artifacts.materializers.base import (
    CannotMaterialize,
    Materializer,
    Visualization,
    check_library_stamp,
    clip,
    module_loaded,
    write_library_stamp,
)
from gristmill.artifacts.materializers.numpy import NumpyMaterializer
from gristmill.errors import MaterializerError

MODEL_FILE = "model.keras"
# Tensor dtypes numpy has no standard .npy type for: stored as the unsigned integers of the
# same width and bit-cast back.
_BITCAST = {"bfloat16": "uint16", "float8_e4m3fn": "uint8", "float8_e5m2": "uint8"}


class KerasMaterializer(Materializer):
    """A ``keras.Model`` (Sequential, functional, or a subclass registered with
    ``keras.saving.register_keras_serializable``) as one ``model.keras`` file: architecture
    as JSON, weights as HDF5, the compiled optimizer state too. Models holding ``Lambda``
    layers would need unsafe deserialization and are left to the logged pickle fallback."""

    name = "keras"
    # Above torch_module (20): with the torch backend a keras.Model is also an nn.Module.
    priority = 25

    @classmethod
    def can_handle(cls, data_type: type) -> bool:
        keras = module_loaded("keras")
        return keras is not None and issubclass(data_type, keras.Model)

    def save(self, value: Any, directory: Path) -> None:
        keras = _library("keras")

        if any(isinstance(layer, keras.layers.Lambda) for layer in _layers(value)):
            _logger().info(
                "%s holds a Lambda layer, which loads only with unsafe deserialization; "
                "trying the next materializer (use a custom layer class instead)",
                type(value).__name__,
            )
            raise CannotMaterialize
        value.save(directory / MODEL_FILE)
        write_library_stamp(directory, "keras", backend=keras.backend.backend())

    def load(self, directory: Path, data_type: str) -> Any:
        keras = _library("keras")

        stamp = check_library_stamp(directory, same="major")
        backend = keras.backend.backend()
        if stamp.get("backend", backend) != backend:
            # Weights load across backends, but a model saved with one may hold ops of it.
            _logger().info("loading a Keras model saved with %s on %s", stamp["backend"], backend)
        return keras.models.load_model(directory / MODEL_FILE, safe_mode=True)

    def describe(self, value: Any) -> tuple[str, dict[str, Any]]:
        fields = _model_fields(value)
        meta = {k: fields[k] for k in ("parameters", "layers")}
        return clip(
            f"{type(value).__name__} '{fields['name']}': {fields['layers']} layers, "
            f"{fields['parameters']:,} parameters"
        ), meta

    def visualize(self, value: Any) -> Visualization | None:
        fields = _model_fields(value)
        rows = [
            [layer.name, type(layer).__name__, _count(layer.weights)]
            for layer in list(getattr(value, "layers", []))[:100]
        ]
        return {
            "kind": "sections",
            "sections": [
                {"kind": "fields", "fields": fields},
                {
                    "kind": "table",
                    "title": "layers",
                    "columns": ["name", "class", "parameters"],
                    "rows": rows,
                },
            ],
        }


class TFTensorMaterializer(Materializer):
    """A ``tf.Tensor`` as ``array.npy`` (what ``np.save`` writes, no pickle), its TensorFlow
    dtype recorded; comes back as a ``tf.Tensor`` of the same dtype and shape. String tensors
    are left to the next materializer."""

    name = "tf_tensor"
    priority = 20

    @classmethod
    def can_handle(cls, data_type: type) -> bool:
        tf = module_loaded("tensorflow")
        return tf is not None and issubclass(data_type, tf.Tensor)

    def save(self, value: Any, directory: Path) -> dict[str, str]:
        dtype = value.dtype.name
        if dtype in ("string", "resource", "variant"):
            raise CannotMaterialize
        import numpy as np

        array = np.asarray(value.numpy())  # a 0-d tensor gives a numpy scalar
        if dtype in _BITCAST:
            array = array.view(_BITCAST[dtype])
        known = NumpyMaterializer().save(array, directory)
        write_library_stamp(directory, "tensorflow", dtype=dtype)
        return known

    def load(self, directory: Path, data_type: str) -> Any:
        import numpy as np

        tf = _library("tensorflow")

        stamp = check_library_stamp(directory, same="major")
        array = np.load(directory / "array.npy", allow_pickle=False)
        dtype = str(stamp.get("dtype", array.dtype.name))
        if not hasattr(tf.dtypes, dtype) or not isinstance(getattr(tf.dtypes, dtype), tf.DType):
            raise MaterializerError(f"unknown TensorFlow dtype '{clip(dtype, 40)}' recorded")
        if dtype in _BITCAST:
            return tf.bitcast(tf.constant(array), getattr(tf.dtypes, dtype))
        return tf.constant(array, dtype=getattr(tf.dtypes, dtype))

    def describe(self, value: Any) -> tuple[str, dict[str, Any]]:
        shape = [int(d) for d in value.shape]
        meta = {"shape": shape, "dtype": value.dtype.name}
        return f"tf.Tensor(shape={tuple(shape)}, dtype={value.dtype.name})", meta

    def visualize(self, value: Any) -> Visualization | None:
        import numpy as np

        fields: dict[str, Any] = {
            "class": f"{type(value).__module__}.{type(value).__qualname__}",
            "shape": [int(d) for d in value.shape],
            "dtype": value.dtype.name,
            "elements": int(np.prod(value.shape)),
        }
        if (value.dtype.is_floating or value.dtype.is_integer) and fields["elements"] > 0:
            array = value.numpy().astype(np.float64)
            finite = array[np.isfinite(array)]
            if finite.size:
                fields.update(
                    min=float(finite.min()),
                    max=float(finite.max()),
                    mean=float(finite.mean()),
                    std=float(finite.std()),
                )
        return {"kind": "fields", "fields": fields}


def _layers(model: Any) -> list[Any]:
    """Every layer in the model, nested models' layers included."""
    found: list[Any] = []
    pending = list(getattr(model, "layers", []))
    while pending:
        layer = pending.pop()
        found.append(layer)
        pending.extend(getattr(layer, "layers", []))
    return found


def _count(weights: Any) -> int:
    import math

    return sum(math.prod(int(d) for d in w.shape) for w in weights)


def _model_fields(model: Any) -> dict[str, Any]:
    built = bool(getattr(model, "built", False))
    return {
        "class": f"{type(model).__module__}.{type(model).__qualname__}",
        "name": model.name,
        "layers": len(getattr(model, "layers", [])),
        "parameters": _count(model.weights) if built else 0,
        "trainable": _count(model.trainable_weights) if built else 0,
        "compiled": bool(getattr(model, "compiled", False)),
        "built": built,
    }


def _library(name: str) -> Any:
    """Imported on use (neither ships type information, so mypy sees them as Any)."""
    import importlib

    return importlib.import_module(name)


def _logger() -> Any:
    import logging

    return logging.getLogger("gristmill")
