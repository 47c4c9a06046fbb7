"""Materializers for Python builtins (JSON), raw bytes and pydantic models (JSON)."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

from gristmill.artifacts.materializers.base import (
    CannotMaterialize,
    Materializer,
    clip,
    data_type_name,
    module_loaded,
)
from gristmill.errors import MaterializerError

_JSON_TYPES = (dict, list, tuple, str, int, float, bool, type(None), set, frozenset)
_CONTAINERS = {"builtins.tuple": tuple, "builtins.set": set, "builtins.frozenset": frozenset}


class JSONMaterializer(Materializer):
    """Builtins and containers of them as ``data.json``; tuples and sets come back as such."""

    name = "json"
    priority = 10

    @classmethod
    def can_handle(cls, data_type: type) -> bool:
        return issubclass(data_type, _JSON_TYPES)

    def save(self, value: Any, directory: Path) -> None:
        if isinstance(value, (set, frozenset)):
            try:
                value = sorted(value)
            except TypeError:
                raise CannotMaterialize from None
        try:
            text = json.dumps(
                value, allow_nan=True, ensure_ascii=False, sort_keys=isinstance(value, dict)
            )
        except (TypeError, ValueError):
            raise CannotMaterialize from None
        if not _round_trips(value):
            raise CannotMaterialize
        (directory / "data.json").write_text(text, encoding="utf-8")

    def load(self, directory: Path, data_type: str) -> Any:
        value = json.loads((directory / "data.json").read_text(encoding="utf-8"))
        container = _CONTAINERS.get(data_type)
        if container is not None:
            return container(value)
        if data_type not in (
            "builtins.dict",
            "builtins.list",
            "builtins.str",
            "builtins.int",
            "builtins.float",
            "builtins.bool",
            "builtins.NoneType",
        ):
            # A subclass of a builtin (IntEnum, a str subclass): rebuild it when importable.
            cls = _import_type(data_type)
            if cls is not None:
                try:
                    return cls(value)
                except Exception:
                    return value
        return value

    def describe(self, value: Any) -> tuple[str, dict[str, Any]]:
        meta: dict[str, Any] = {}
        if isinstance(value, (list, tuple, dict, set, frozenset)):
            meta["length"] = len(value)
        return clip(
            json.dumps(value, default=str)
            if not isinstance(value, (set, frozenset))
            else repr(value)
        ), meta


def _round_trips(value: Any) -> bool:
    """JSON keeps the value: dict keys are strings, nested containers hold only JSON types."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if not all(isinstance(k, str) for k in item):
                return False
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            if isinstance(item, tuple) and item is not value:
                return False  # a nested tuple would come back a list
            stack.extend(item)
        elif not isinstance(item, (str, int, float, type(None), set, frozenset)):
            return False
    return True


def _import_type(dotted: str) -> Any:
    module_name, _, qualname = dotted.rpartition(".")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
        return obj
    except (ImportError, AttributeError, ValueError):
        return None


class BytesMaterializer(Materializer):
    """``bytes``/``bytearray`` as a raw ``data.bin`` file."""

    name = "bytes"
    priority = 10

    @classmethod
    def can_handle(cls, data_type: type) -> bool:
        return issubclass(data_type, (bytes, bytearray, memoryview))

    def save(self, value: Any, directory: Path) -> None:
        (directory / "data.bin").write_bytes(bytes(value))

    def load(self, directory: Path, data_type: str) -> Any:
        data = (directory / "data.bin").read_bytes()
        return bytearray(data) if data_type == "builtins.bytearray" else data

    def describe(self, value: Any) -> tuple[str, dict[str, Any]]:
        return f"<{len(value)} bytes>", {"length": len(value)}


class PydanticMaterializer(Materializer):
    """Pydantic models as JSON (``model.json``), validated back into their class on load."""

    name = "pydantic"
    priority = 20

    @classmethod
    def can_handle(cls, data_type: type) -> bool:
        pydantic = module_loaded("pydantic")
        return pydantic is not None and issubclass(data_type, pydantic.BaseModel)

    def save(self, value: Any, directory: Path) -> None:
        (directory / "model.json").write_text(value.model_dump_json(), encoding="utf-8")

    def load(self, directory: Path, data_type: str) -> Any:
        cls = _import_type(data_type)
        if cls is None:
            raise MaterializerError(
                f"cannot import the pydantic model class {data_type} to load this artifact; "
                "make it importable (the module that defines it must be on sys.path)"
            )
        return cls.model_validate_json((directory / "model.json").read_text(encoding="utf-8"))

    def describe(self, value: Any) -> tuple[str, dict[str, Any]]:
        return clip(f"{type(value).__name__}({value.model_dump_json()})"), {
            "type": data_type_name(type(value))
        }
