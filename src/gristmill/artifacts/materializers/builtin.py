"""Materializers for Python builtins (JSON), raw bytes and pydantic models (JSON).

The type name recorded with an artifact version is data from the metadata store: loading never
imports a module or calls anything it names. The JSON materializer rebuilds the containers it
saves (tuple, set, frozenset) from a fixed table, and an enum member only from an enum class
that is already imported; the pydantic materializer validates into a model class that is
already imported (the step's or the caller's own code), else returns the plain JSON data.
"""

from __future__ import annotations

import enum
import json
import logging
import reprlib
from pathlib import Path
from typing import Any

from gristmill.artifacts.materializers.base import (
    PREVIEW_CHARS,
    CannotMaterialize,
    Materializer,
    class_named,
    clip,
    data_type_name,
    module_loaded,
)
from gristmill.errors import MaterializerError

logger = logging.getLogger("gristmill")

_JSON_TYPES = (dict, list, tuple, str, int, float, bool, type(None), set, frozenset)
# Every type the JSON materializer rebuilds by name: these, and already-imported enums.
_CONTAINERS = {"builtins.tuple": tuple, "builtins.set": set, "builtins.frozenset": frozenset}
_PLAIN = frozenset(
    {
        "builtins.dict",
        "builtins.list",
        "builtins.str",
        "builtins.int",
        "builtins.float",
        "builtins.bool",
        "builtins.NoneType",
    }
)


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
            if not isinstance(value, list):
                raise MaterializerError(
                    f"data.json holds a {type(value).__name__}, not the list a {data_type} is "
                    "stored as"
                )
            return container(value)
        if data_type in _PLAIN:
            return value
        # An enum member (IntEnum, StrEnum) comes back as itself only when its class is
        # already imported: the recorded name picks among enums, never any other callable.
        cls = class_named(data_type, enum.Enum)
        if cls is not None:
            try:
                return cls(value)
            except ValueError:
                pass
        logger.debug("loading a %s as its plain JSON value", data_type)
        return value

    def describe(self, value: Any) -> tuple[str, dict[str, Any]]:
        meta: dict[str, Any] = {}
        if isinstance(value, (list, tuple, dict, set, frozenset)):
            meta["length"] = len(value)
        if isinstance(value, (set, frozenset)):
            return clip(_PREVIEW_REPR.repr(value)), meta
        return clip(bounded_json(value, PREVIEW_CHARS * 2)), meta


_PREVIEW_REPR = reprlib.Repr()
_PREVIEW_REPR.maxstring = _PREVIEW_REPR.maxother = PREVIEW_CHARS
_PREVIEW_REPR.maxset = _PREVIEW_REPR.maxfrozenset = 30


def bounded_json(value: Any, limit: int) -> str:
    """The start (at least ``limit`` characters, when there are that many) of the JSON text
    of ``value``, built from bounded slices: the preview of a 1 GB string or a list of
    millions costs what a short one does, where ``json.dumps`` of the whole would copy it."""
    parts: list[str] = []
    size = 0

    def add(text: str) -> bool:
        nonlocal size
        parts.append(text)
        size += len(text)
        return size < limit

    def walk(item: Any, depth: int) -> bool:
        if isinstance(item, str):
            return add(json.dumps(item[:limit]) if len(item) > limit else json.dumps(item))
        if depth > 32:
            return add("...")
        if isinstance(item, dict):
            if not add("{"):
                return False
            for i, (key, inner) in enumerate(item.items()):
                if (i and not add(", ")) or not walk(str(key), depth + 1) or not add(": "):
                    return False
                if not walk(inner, depth + 1):
                    return False
            return add("}")
        if isinstance(item, (list, tuple)):
            if not add("["):
                return False
            for i, inner in enumerate(item):
                if (i and not add(", ")) or not walk(inner, depth + 1):
                    return False
            return add("]")
        try:
            return add(json.dumps(item))
        except (TypeError, ValueError):
            return add(_PREVIEW_REPR.repr(item))

    walk(value, 0)
    return "".join(parts)


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
    """Pydantic models as JSON (``model.json``), validated back into their class on load when
    that class is already imported (by the step's module, or the caller's code); otherwise the
    model's data comes back as a plain dict, since the recorded class name is never imported."""

    name = "pydantic"
    priority = 20

    @classmethod
    def can_handle(cls, data_type: type) -> bool:
        pydantic = module_loaded("pydantic")
        return pydantic is not None and issubclass(data_type, pydantic.BaseModel)

    def save(self, value: Any, directory: Path) -> None:
        (directory / "model.json").write_text(value.model_dump_json(), encoding="utf-8")

    def load(self, directory: Path, data_type: str) -> Any:
        text = (directory / "model.json").read_text(encoding="utf-8")
        pydantic = module_loaded("pydantic")
        cls = class_named(data_type, pydantic.BaseModel) if pydantic is not None else None
        if cls is None:
            logger.info(
                "loading the %s as a dict: its class is not imported in this process (import "
                "the module that defines it first to get the model back)",
                data_type,
            )
            return json.loads(text)
        return cls.model_validate_json(text)  # type: ignore[attr-defined]

    def describe(self, value: Any) -> tuple[str, dict[str, Any]]:
        return clip(f"{type(value).__name__}({value.model_dump_json()[: PREVIEW_CHARS * 2]})"), {
            "type": data_type_name(type(value))
        }
