"""numpy arrays as ``.npy`` (no pickle), loaded memory-mapped copy-on-write: no copy, and a
step may still modify what it received without touching the stored file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gristmill.artifacts.materializers.base import CannotMaterialize, Materializer, module_loaded


class NumpyMaterializer(Materializer):
    name = "numpy"
    priority = 20

    @classmethod
    def can_handle(cls, data_type: type) -> bool:
        np = module_loaded("numpy")
        return np is not None and issubclass(data_type, np.ndarray)

    def save(self, value: Any, directory: Path) -> None:
        import numpy as np

        if value.dtype.hasobject:
            raise CannotMaterialize  # object arrays need pickle: the fallback handles them
        np.save(directory / "array.npy", np.asanyarray(value), allow_pickle=False)

    def load(self, directory: Path, data_type: str) -> Any:
        import numpy as np

        path = directory / "array.npy"
        array = np.load(path, mmap_mode="c", allow_pickle=False)
        if array.size == 0 or array.ndim == 0:
            return np.load(path, allow_pickle=False)  # nothing to map
        return array

    def describe(self, value: Any) -> tuple[str, dict[str, Any]]:
        meta = {"shape": list(value.shape), "dtype": str(value.dtype)}
        return f"array(shape={tuple(value.shape)}, dtype={value.dtype})", meta
