"""The last resort: cloudpickle. Every use is logged, and loading needs a trusted artifact
store (the local default is) or GRISTMILL_ALLOW_PICKLE=1, since unpickling runs code."""

from __future__ import annotations

import reprlib
from pathlib import Path
from typing import Any

from gristmill.artifacts.materializers.base import PREVIEW_CHARS, Materializer, clip


class CloudpickleMaterializer(Materializer):
    name = "cloudpickle"
    priority = -1000
    safe = False

    @classmethod
    def can_handle(cls, data_type: type) -> bool:
        return True

    def save(self, value: Any, directory: Path) -> None:
        import cloudpickle

        with open(directory / "value.pkl", "wb") as handle:
            cloudpickle.dump(value, handle, protocol=5)

    def load(self, directory: Path, data_type: str) -> Any:
        import pickle

        with open(directory / "value.pkl", "rb") as handle:
            return pickle.load(handle)

    def describe(self, value: Any) -> tuple[str, dict[str, Any]]:
        try:
            text = _PREVIEW_REPR.repr(value)  # builtins and containers of them are cut short
        except Exception:
            text = f"<{type(value).__name__}>"
        return clip(text), {}


_PREVIEW_REPR = reprlib.Repr()
_PREVIEW_REPR.maxstring = _PREVIEW_REPR.maxother = PREVIEW_CHARS
