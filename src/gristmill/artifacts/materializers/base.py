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

    def visualize(self, value: Any) -> Visualization | None:
        """A small description of the value for people, stored with the version and shown by
        ``gristmill artifacts show`` and the dashboard; None when there is nothing to show
        beyond the preview. Kept under ``MAX_VISUALIZATION_BYTES`` of JSON."""
        return None


class LoadsAs:
    """A capability of a materializer: giving its artifacts back as another type a consuming
    step asks for (a Spark or Dask DataFrame to a step annotated ``pd.DataFrame``). Type checks
    at compile time accept that pairing, and the launcher loads through ``load_as``."""

    @classmethod
    def loads_as(cls, target: type) -> bool:
        """Whether ``load_as`` can give a value of ``target``."""
        return False

    def load_as(self, directory: Path, data_type: str, target: type) -> Any:
        """The stored value as a ``target``."""
        raise NotImplementedError


def converts_to(produced: type, expected: type) -> bool:
    """Whether the materializer that stores ``produced`` values gives them back as ``expected``
    (without importing any library: only materializers already loaded are asked)."""
    found = candidates_for(produced)
    return bool(found) and issubclass(found[0], LoadsAs) and found[0].loads_as(expected)


# A visualization is plain JSON with a "kind" the CLI and the dashboard know how to show:
#   {"kind": "table", "columns": [...], "rows": [[...], ...], "title": "head"}  (also dtypes,
#        statistics: several tables go in {"kind": "sections", "sections": [...]})
#   {"kind": "text" | "markdown" | "html", "text": "..."}   (html is shown sandboxed, never run)
#   {"kind": "image", "media_type": "image/png", "data": "<base64>", "width": w, "height": h}
#   {"kind": "fields", "fields": {"class": "...", "parameters": {...}, "size": n}}
Visualization = dict[str, Any]
MAX_VISUALIZATION_BYTES = 64 * 1024


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


LIBRARY_STAMP = "library.json"


def write_library_stamp(directory: Path, package: str, **details: Any) -> None:
    """Record which version of ``package`` wrote this artifact (``library.json``, part of its
    content hash), so loading it under an incompatible version fails with a clear error
    (``check_library_stamp``) instead of a crash deep in the library."""
    import json
    from importlib.metadata import version

    stamp = {"package": package, "version": version(package), **details}
    (directory / LIBRARY_STAMP).write_text(json.dumps(stamp, sort_keys=True), encoding="utf-8")


def check_library_stamp(directory: Path, *, same: str = "major") -> dict[str, Any]:
    """The stamp ``write_library_stamp`` left, after checking the installed version of its
    package can read it: the same major version (``same="major"``), the same major.minor
    (``"minor"``), or the exact version (``"exact"``). A MaterializerError names both versions
    and the fix otherwise."""
    import json
    from importlib.metadata import PackageNotFoundError, version

    path = directory / LIBRARY_STAMP
    if not path.is_file():
        return {}
    stamp: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    package, written = str(stamp.get("package")), str(stamp.get("version"))
    try:
        installed = version(package)
    except PackageNotFoundError:
        raise MaterializerError(
            f"this artifact was written by {package} {written}, which is not installed here: "
            f"pip install '{package}=={written}'"
        ) from None
    parts = {"major": 1, "minor": 2, "exact": 99}[same]
    if written.split(".")[:parts] != installed.split(".")[:parts]:
        raise MaterializerError(
            f"this artifact was written by {package} {written} and {package} {installed} is "
            f"installed; its format is only read by the same "
            f"{'version' if same == 'exact' else same + ' version'}: "
            f"pip install '{package}=={written}' to load it (or re-run the step that made it)"
        )
    return stamp


def data_type_name(data_type: type) -> str:
    return f"{data_type.__module__}.{data_type.__qualname__}"


_registry: list[type[Materializer]] | None = None
_by_type: dict[type, list[type[Materializer]]] = {}


def registered() -> list[type[Materializer]]:
    """Every registered materializer class, highest priority first."""
    global _registry
    if _registry is None:
        classes = []
        for name in entry_points("gristmill.materializers"):
            try:
                classes.append(load_plugin("materializer", name))
            except Exception as exc:
                # One broken plugin must not stop every step from storing its outputs; what it
                # would have stored goes to the next materializer, and loading an artifact it
                # wrote says the materializer is not installed.
                logger.warning("materializer plugin '%s' could not be loaded: %s", name, exc)
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
