"""numpy arrays as ``.npy`` (no pickle), loaded memory-mapped copy-on-write: no copy, and a
step may still modify what it received without touching the stored file. The visualization's
statistics read at most STATISTICS_VALUES values (an even sample of larger arrays), so they
cost little next to writing the array."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gristmill.artifacts.materializers.base import (
    CannotMaterialize,
    Materializer,
    Visualization,
    module_loaded,
)

STATISTICS_VALUES = 100_000


class NumpyMaterializer(Materializer):
    name = "numpy"
    priority = 20

    @classmethod
    def can_handle(cls, data_type: type) -> bool:
        np = module_loaded("numpy")
        return np is not None and issubclass(data_type, np.ndarray)

    def save(self, value: Any, directory: Path) -> dict[str, str]:
        """A standard .npy file (what np.save writes), hashed from memory on a second core
        while the bytes go to disk: storing 100 MB costs about what np.save alone does."""
        import io
        import threading

        import numpy as np

        from gristmill._hashing import new_hasher

        if value.dtype.hasobject or type(value) not in (np.ndarray, np.memmap):
            # Object arrays need pickle, and subclasses (masked arrays, matrices) carry more
            # than their data: the fallback keeps them whole.
            raise CannotMaterialize
        array = np.require(value, requirements="C")  # keeps 0-d arrays 0-d
        header = io.BytesIO()
        fields = np.lib.format.header_data_from_array_1_0(array)
        try:
            np.lib.format.write_array_header_1_0(header, fields)
        except ValueError:  # a header too long for format 1.0 (huge structured dtypes)
            header = io.BytesIO()
            np.lib.format.write_array_header_2_0(header, fields)
        data = memoryview(array.reshape(-1).view(np.uint8)) if array.size else memoryview(b"")
        hasher = new_hasher()
        hasher.update(header.getvalue())
        hashing = threading.Thread(target=hasher.update, args=(data,))  # blake3 releases the GIL
        hashing.start()
        with open(directory / "array.npy", "wb") as handle:
            handle.write(header.getvalue())
            handle.write(data)
        hashing.join()
        return {"array.npy": hasher.hexdigest()}

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

    def visualize(self, value: Any) -> Visualization | None:
        import warnings

        import numpy as np

        from gristmill.artifacts.materializers.tabular import number

        fields: dict[str, Any] = {"shape": list(value.shape), "dtype": str(value.dtype)}
        if value.size and value.dtype.kind in "iufb":
            values = value
            if value.size > STATISTICS_VALUES:
                # Every n-th value: a strided view of a contiguous array, else read through
                # ``flat``; never a copy of the whole array.
                step = -(-value.size // STATISTICS_VALUES)
                if value.flags.c_contiguous:
                    values = value.reshape(-1)[::step]
                else:
                    values = value.flat[np.arange(0, value.size, step, dtype=np.intp)]
                fields["statistics_of"] = f"every {step}th value ({values.size:,} values)"
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN arrays
                if value.dtype.kind == "b":
                    fields["true"] = number(np.count_nonzero(values))
                    fields["mean"] = number(np.mean(values))
                else:
                    fields["min"] = number(np.nanmin(values))
                    fields["max"] = number(np.nanmax(values))
                    fields["mean"] = number(np.nanmean(values, dtype=np.float64))
                    if value.dtype.kind == "f":
                        fields["nan"] = number(np.count_nonzero(np.isnan(values)))
        return {"kind": "fields", "fields": fields}
