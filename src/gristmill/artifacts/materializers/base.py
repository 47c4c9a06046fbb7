"""The materializer extension point and the registry that picks one for a type.

A materializer turns a value into files in a local directory and back. It implements
``can_handle`` (by type, without importing the library it serves unless the value's module
is already imported), ``save`` and ``load``; ``describe`` is optional. Materializers are found
through the ``gristmill.materializers`` entry-point group, highest ``priority`` first.
"""

from __future__ import annotations

import abc
import io
import logging
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from gristmill._plugins import entry_points, load_plugin
from gristmill.errors import MaterializerError

logger = logging.getLogger("gristmill")
PREVIEW_CHARS = 240


class CannotMaterialize(Exception):
    """Raised by ``save`` when this particular value does not fit (e.g. a dict that is not
    JSON); the registry then tries the next materializer."""


class Materializer(abc.ABC):
    """Stores values of some types as files; ``name`` and ``version`` are recorded with every
    artifact version and are part of cache keys."""

    name: ClassVar[str]
    version: ClassVar[str] = "1"
    priority: ClassVar[int] = 0
    # False for formats that execute code on load (pickle): loading those needs a trusted store.
    safe: ClassVar[bool] = True

    @classmethod
    @abc.abstractmethod
    def can_handle(cls, data_type: type) -> bool:
        """Whether values of this type can (usually) be stored."""

    @abc.abstractmethod
    def save(self, value: Any, directory: Path) -> dict[str, str] | None:
        """Write ``value`` into the (empty) local ``directory``. May return the BLAKE3 digest of
        files it hashed while writing (relative path → hex), which spares a second pass."""

    @abc.abstractmethod
    def load(self, directory: Path, data_type: str) -> Any:
        """Read back what ``save`` wrote; ``data_type`` is the dotted type name recorded."""

    def describe(self, value: Any) -> tuple[str, dict[str, Any]]:
        """A short preview text and metadata (shape, rows, ...) recorded with the version."""
        return clip(repr(value)), {}


class HashingFile(io.BufferedIOBase):
    """A binary file for writing whose bytes are also hashed (BLAKE3) on a second thread as
    they arrive, so a materializer that streams its format (Parquet, npz, ...) gets the digest
    without reading the file back. Not seekable: writers that need to seek fall back to
    streaming (zipfile) or must write a plain file instead."""

    def __init__(self, path: Path) -> None:
        import queue
        import threading

        from gristmill._hashing import new_hasher

        super().__init__()
        self._file = open(path, "wb")  # noqa: SIM115 - closed by close()
        self._hasher = new_hasher()
        self._pending: queue.Queue[bytes | None] = queue.Queue(maxsize=64)  # bounds memory
        self._hashing = threading.Thread(target=self._hash_pending, daemon=True)
        self._hashing.start()

    def _hash_pending(self) -> None:
        while (chunk := self._pending.get()) is not None:
            self._hasher.update(chunk)  # blake3 releases the GIL

    def write(self, data: Any) -> int:
        if not isinstance(data, bytes):
            data = bytes(data)  # the writer may reuse its buffer before the hash reads it
        self._pending.put(data)
        return self._file.write(data)

    def writable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._file.tell()

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        if self.closed:
            return
        super().close()  # flushes, then marks this closed
        self._pending.put(None)
        self._file.close()
        self._hashing.join()

    def hexdigest(self) -> str:
        self.close()
        return str(self._hasher.hexdigest())


def clip(text: str, limit: int = PREVIEW_CHARS) -> str:
    """One line of at most ``limit`` characters (runs of whitespace become one space, control
    characters are dropped). Only the start of ``text`` is looked at, so clipping a huge text
    costs no more than a short one."""
    head = text[: limit * 4 + 64]
    short = " ".join(_CONTROL.sub("", head).split())
    if len(short) <= limit and len(head) == len(text):
        return short
    return short[: limit - 3] + "..."


_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f]")  # what split() leaves


def class_named(dotted: str, base: type) -> type | None:
    """The class a recorded dotted type name (``module.Qual.Name``) names, if its module is
    already imported and it is a subclass of ``base``; else None.

    Nothing is imported and no attribute hook (a module's ``__getattr__``) runs: a type name
    read from the metadata store is data, and whoever can write the store must not be able to
    make a load import a module or call a function. Only classes that code this process already
    runs defined can come back, and only of the kind the materializer rebuilds."""
    module_name, _, qualname = dotted.rpartition(".")
    obj: Any = sys.modules.get(module_name)
    while obj is None and "." in module_name:  # a nested class: ``module.Outer.Inner``
        module_name, _, outer = module_name.rpartition(".")
        qualname = f"{outer}.{qualname}"
        obj = sys.modules.get(module_name)
    if obj is None or not qualname:
        return None
    for part in qualname.split("."):
        namespace = getattr(obj, "__dict__", None)
        if not isinstance(namespace, Mapping) or part not in namespace:
            return None
        obj = namespace[part]
    if isinstance(obj, type) and issubclass(obj, base):
        return obj
    return None


def module_loaded(name: str) -> Any:
    """The module if the process already imported it; a value of its types cannot exist
    otherwise, so materializers never import heavy libraries just to say no."""
    return sys.modules.get(name)


def data_type_name(data_type: type) -> str:
    return f"{data_type.__module__}.{data_type.__qualname__}"


_registry: list[type[Materializer]] | None = None
_by_type: dict[type, list[type[Materializer]]] = {}


def registered() -> list[type[Materializer]]:
    """Every registered materializer class, highest priority first."""
    global _registry
    if _registry is None:
        classes = [
            load_plugin("materializer", name) for name in entry_points("gristmill.materializers")
        ]
        if not classes:
            raise MaterializerError(
                "no materializers are registered: is gristmill installed? (`pip install -e .`)"
            )
        _registry = sorted(classes, key=lambda c: -c.priority)
    return _registry


def candidates_for(data_type: type) -> list[type[Materializer]]:
    """Materializers that can handle a type, best first (cached per type)."""
    found = _by_type.get(data_type)
    if found is None:
        found = [m for m in registered() if m.can_handle(data_type)]
        _by_type[data_type] = found
    return found


def materializer_named(name: str) -> type[Materializer]:
    for m in registered():
        if m.name == name:
            return m
    known = ", ".join(sorted(m.name for m in registered()))
    raise MaterializerError(
        f"artifact was stored with materializer '{name}', which is not installed here "
        f"(installed: {known}); install the package that provides it"
    )


def materializer_key(data_type: Any) -> str:
    """What the cache key records for an output's declared type: the materializer that will
    store it (name@version), or 'auto' when the type is only known at run time."""
    if not isinstance(data_type, type) or data_type in (object, Any):
        return "auto"
    found = candidates_for(data_type)
    return f"{found[0].name}@{found[0].version}" if found else "auto"
