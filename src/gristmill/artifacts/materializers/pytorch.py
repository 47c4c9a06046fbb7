"""PyTorch: tensors and state_dicts as safetensors, whole modules as TorchScript, and a refusal
for Datasets/DataLoaders. torch is imported only to store or load one of its values.

Nothing here unpickles: safetensors is raw tensor bytes plus a JSON header, and loading
TorchScript rebuilds a graph without running the Python that defined the module. A module
TorchScript cannot compile is left to the logged cloudpickle fallback (trusted stores only).
torch 2.14 marks TorchScript deprecated in favour of ``torch.export``, which needs example
inputs gristmill does not have; its FutureWarnings, which a user could not act on, are hidden.
"""

from __future__ import annotations

import json
import math
from collections import OrderedDict
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
from gristmill.errors import MaterializerError

TENSORS_FILE = "tensors.safetensors"
MODULE_FILE = "module.torchscript.pt"
STRUCTURE_KEY = "gristmill.structure"  # in the safetensors header: how the leaves nest
STATS_MAX_ELEMENTS = 10_000_000  # statistics of larger tensors would cost more than storing them
TABLE_ROWS = 100  # tensors listed in a state_dict's visualization


class TorchTensorMaterializer(Materializer):
    """A ``torch.Tensor`` (or ``nn.Parameter``), or a ``state_dict``: nested ``dict``/
    ``OrderedDict``/``list``/``tuple`` containers holding tensors and plain scalars (an
    optimizer's state_dict, a ``{"model": ..., "epoch": 3}`` checkpoint), as one safetensors
    file. Containers, key types and scalars are recorded as JSON in its header. Tensors come
    back on the CPU; tensors that shared memory come back as separate copies."""

    name = "torch_tensors"
    # Below JSON (10): a plain dict is JSON's, which gives up at the first tensor it meets.
    priority = 5

    @classmethod
    def can_handle(cls, data_type: type) -> bool:
        # A dict may hold tensors whether or not torch was imported when this was first asked
        # (the answer is cached per type), so dicts are always candidates; save() decides.
        if issubclass(data_type, dict):
            return True
        torch = module_loaded("torch")
        return torch is not None and issubclass(data_type, torch.Tensor)

    def save(self, value: Any, directory: Path) -> dict[str, str]:
        torch = module_loaded("torch")
        if torch is None:
            raise CannotMaterialize  # no tensor can be in it
        tensors: dict[str, Any] = {}
        structure = _encode(value, (), tensors, torch)
        if not tensors:
            raise CannotMaterialize  # nothing for safetensors: JSON already said no
        return _write_safetensors(tensors, structure, directory)

    def load(self, directory: Path, data_type: str) -> Any:
        import safetensors.torch

        check_library_stamp(directory, same="major")
        path = directory / TENSORS_FILE
        with open(path, "rb") as handle:
            header_size = int.from_bytes(handle.read(8), "little")
            header = json.loads(handle.read(header_size))
        structure = json.loads(header.get("__metadata__", {}).get(STRUCTURE_KEY, "null"))
        if structure is None:
            raise MaterializerError(f"{path} has no '{STRUCTURE_KEY}' entry in its header")
        tensors: dict[str, Any] = safetensors.torch.load_file(path)
        return _decode(structure, tensors)

    def describe(self, value: Any) -> tuple[str, dict[str, Any]]:
        torch = module_loaded("torch")
        if torch is not None and isinstance(value, torch.Tensor):
            meta: dict[str, Any] = {"shape": list(value.shape), "dtype": str(value.dtype)}
            return f"tensor(shape={tuple(value.shape)}, dtype={value.dtype})", meta
        leaves = _tensor_leaves(value, ())
        count = sum(t.numel() for _, t in leaves)
        size = sum(t.numel() * t.element_size() for _, t in leaves)
        meta = {"tensors": len(leaves), "elements": count, "bytes": size}
        names = ", ".join(n for n, _ in leaves[:6]) + (", ..." if len(leaves) > 6 else "")
        return clip(f"{len(leaves)} tensors, {count:,} elements, {size:,} bytes [{names}]"), meta

    def visualize(self, value: Any) -> Visualization | None:
        torch = module_loaded("torch")
        if torch is not None and isinstance(value, torch.Tensor):
            return {"kind": "fields", "fields": _tensor_fields(value, torch)}
        leaves = _tensor_leaves(value, ())
        rows: list[list[Any]] = [
            [name, list(t.shape), str(t.dtype), t.numel()] for name, t in leaves[:TABLE_ROWS]
        ]
        title = f"{len(leaves)} tensors" + (
            f" (first {TABLE_ROWS})" if len(leaves) > TABLE_ROWS else ""
        )
        return {
            "kind": "table",
            "title": title,
            "columns": ["name", "shape", "dtype", "elements"],
            "rows": rows,
        }


class TorchModuleMaterializer(Materializer):
    """An ``nn.Module`` as TorchScript (``torch.jit.script``, or the module as it is when it
    already is a scripted or traced ``ScriptModule``), which loads without running Python code
    as a ``ScriptModule`` with the same parameters, buffers, training flag and ``forward``.
    A module TorchScript cannot compile (dynamic Python in ``forward``) is left to the
    cloudpickle fallback, logged as such: trace it yourself (``torch.jit.trace(model,
    example)``) and return the traced module to keep it out of pickle."""

    name = "torch_module"
    priority = 20

    @classmethod
    def can_handle(cls, data_type: type) -> bool:
        nn = module_loaded("torch.nn")
        return nn is not None and issubclass(data_type, nn.Module)

    def save(self, value: Any, directory: Path) -> None:
        import torch

        _hide_torchscript_deprecation()
        scripted = value
        if not isinstance(value, torch.jit.ScriptModule):
            try:
                scripted = torch.jit.script(value)
            except Exception as exc:  # TorchScript raises many kinds; any means "not this way"
                _logger().info(
                    "%s could not be compiled to TorchScript (%s: %s); trying the next "
                    "materializer",
                    type(value).__name__,
                    type(exc).__name__,
                    clip(str(exc)),
                )
                raise CannotMaterialize from exc
        torch.jit.save(scripted, str(directory / MODULE_FILE))
        write_library_stamp(directory, "torch", module_class=_qualified(type(value)))

    def load(self, directory: Path, data_type: str) -> Any:
        import torch

        stamp = check_library_stamp(directory, same="major")
        _refuse_older_than(stamp, "torch", what="TorchScript")
        _hide_torchscript_deprecation()
        load: Any = torch.jit.load  # untyped in torch
        return load(str(directory / MODULE_FILE), map_location="cpu")

    def describe(self, value: Any) -> tuple[str, dict[str, Any]]:
        fields = _module_fields(value)
        meta = {k: fields[k] for k in ("parameters", "bytes")}
        return clip(
            f"{fields['class']}: {fields['parameters']:,} parameters, {fields['bytes']:,} bytes"
        ), meta

    def visualize(self, value: Any) -> Visualization | None:
        return {"kind": "fields", "fields": _module_fields(value)}


class TorchDataRefusal(Materializer):
    """Refuses ``torch.utils.data`` Datasets and DataLoaders, first, so the pickle fallback
    never takes them: they hold code, open files, samplers and worker state rather than
    data, and a pickled one would not load faithfully (or safely) anywhere else."""

    name = "torch_data"
    priority = 1000

    @classmethod
    def can_handle(cls, data_type: type) -> bool:
        data = module_loaded("torch.utils.data")
        return data is not None and issubclass(data_type, (data.Dataset, data.DataLoader))

    def save(self, value: Any, directory: Path) -> None:
        kind = "DataLoader" if type(value).__name__.endswith("DataLoader") else "Dataset"
        raise MaterializerError(
            f"a torch {kind} ({type(value).__name__}) is not stored as an artifact: it holds "
            "code and loading state, not data. Return the data itself instead (a tensor or a "
            "dict of tensors, a numpy array, a pandas DataFrame, or a Hugging Face "
            f"datasets.Dataset) and build the {kind} in the step that uses it"
        )

    def load(self, directory: Path, data_type: str) -> Any:
        raise MaterializerError(f"no {data_type} is ever stored by '{self.name}'")


def _hide_torchscript_deprecation() -> None:
    import warnings

    # Only these messages: a user's own use of deprecated torch APIs still warns.
    warnings.filterwarnings(
        "ignore", message=r"`torch\.jit\.(script|save|load)` is deprecated", category=FutureWarning
    )


def _encode(value: Any, path: tuple[str, ...], tensors: dict[str, Any], torch: Any) -> Any:
    """The JSON structure of a tree of containers, tensors and scalars; each tensor is put in
    ``tensors`` under its dotted path (made unique). CannotMaterialize for anything else."""
    if isinstance(value, torch.Tensor):
        if type(value) not in (torch.Tensor, torch.nn.Parameter):
            raise CannotMaterialize  # a tensor subclass carries more than its data
        if value.layout != torch.strided or value.is_quantized or value.is_nested:
            raise CannotMaterialize
        name = ".".join(path) or "tensor"
        while name in tensors:
            name += "#"
        tensors[name] = value
        return {
            "tensor": name,
            "parameter": isinstance(value, torch.nn.Parameter),
            "requires_grad": bool(value.requires_grad),
        }
    if type(value) in (dict, OrderedDict):
        items = []
        for key, item in value.items():
            if type(key) not in (str, int):
                raise CannotMaterialize  # JSON keeps str and int keys apart; nothing else
            items.append([key, _encode(item, (*path, str(key)), tensors, torch)])
        return {"dict": type(value).__name__, "items": items}
    if type(value) in (list, tuple):
        nodes = [_encode(v, (*path, str(i)), tensors, torch) for i, v in enumerate(value)]
        return {type(value).__name__: nodes}
    if value is None or type(value) in (bool, int, str):
        return {"value": value}
    if type(value) is float:
        # JSON has no NaN or infinity; repr() of a float reads back exactly
        return {"float": repr(value)} if not math.isfinite(value) else {"value": value}
    raise CannotMaterialize


def _decode(node: dict[str, Any], tensors: dict[str, Any]) -> Any:
    if "tensor" in node:
        tensor = tensors[node["tensor"]]
        if node.get("parameter"):
            import torch

            return torch.nn.Parameter(tensor, requires_grad=bool(node.get("requires_grad")))
        return tensor.requires_grad_(True) if node.get("requires_grad") else tensor
    if "dict" in node:
        pairs = [(key, _decode(item, tensors)) for key, item in node["items"]]
        return OrderedDict(pairs) if node["dict"] == "OrderedDict" else dict(pairs)
    if "list" in node:
        return [_decode(item, tensors) for item in node["list"]]
    if "tuple" in node:
        return tuple(_decode(item, tensors) for item in node["tuple"])
    if "float" in node:
        return float(node["float"])
    return node["value"]


def _write_safetensors(tensors: dict[str, Any], structure: Any, directory: Path) -> dict[str, str]:
    """One safetensors file, written by safetensors straight from the tensors' memory (its
    in-memory ``save`` copies 100 MB twice, which cost more than the write), then hashed from
    the page cache on every core, so the store need not read it again."""
    import safetensors.torch
    import torch

    from gristmill._hashing import hash_file

    seen: set[int] = set()
    plain: dict[str, Any] = {}
    for name, given in tensors.items():
        tensor = given.detach()
        if tensor.device.type != "cpu":
            tensor = tensor.cpu()
        pointer = tensor.untyped_storage().data_ptr()
        # safetensors refuses tensors sharing memory (tied weights, views of one buffer)
        if pointer in seen and tensor.numel():
            tensor = tensor.clone()
        seen.add(pointer)
        plain[name] = tensor.contiguous()
    metadata = {STRUCTURE_KEY: json.dumps(structure, separators=(",", ":"))}
    path = directory / TENSORS_FILE
    try:
        safetensors.torch.save_file(plain, path, metadata=metadata)
    except (ValueError, TypeError, RuntimeError):  # e.g. a dtype safetensors does not know
        path.unlink(missing_ok=True)
        raise CannotMaterialize from None
    write_library_stamp(
        directory, "torch", safetensors=_version("safetensors"), torch_version=torch.__version__
    )
    return {TENSORS_FILE: hash_file(path)}


def _tensor_leaves(value: Any, path: tuple[str, ...]) -> list[tuple[str, Any]]:
    torch = module_loaded("torch")
    if torch is not None and isinstance(value, torch.Tensor):
        return [(".".join(path) or "tensor", value)]
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, (list, tuple)):
        items = enumerate(value)
    else:
        return []
    found: list[tuple[str, Any]] = []
    for key, item in items:
        found.extend(_tensor_leaves(item, (*path, str(key))))
    return found


def _tensor_fields(tensor: Any, torch: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "class": _qualified(type(tensor)),
        "shape": list(tensor.shape),
        "dtype": str(tensor.dtype),
        "device": str(tensor.device),
        "elements": tensor.numel(),
        "bytes": tensor.numel() * tensor.element_size(),
    }
    numeric = tensor.dtype.is_floating_point or tensor.dtype in (
        torch.int8,
        torch.int16,
        torch.int32,
        torch.int64,
        torch.uint8,
    )
    if numeric and 0 < tensor.numel() <= STATS_MAX_ELEMENTS:
        with torch.no_grad():
            values = tensor.detach().to(torch.float64)
            finite = values[torch.isfinite(values)]
            if finite.numel():
                fields["min"] = float(finite.min())
                fields["max"] = float(finite.max())
                fields["mean"] = float(finite.mean())
                fields["std"] = float(finite.std()) if finite.numel() > 1 else 0.0
            fields["non_finite"] = int(values.numel() - finite.numel())
    return fields


def _module_fields(module: Any) -> dict[str, Any]:
    parameters = list(module.parameters())
    buffers = list(module.buffers())
    return {
        "class": _qualified(type(module)),
        "parameters": sum(p.numel() for p in parameters),
        "trainable": sum(p.numel() for p in parameters if p.requires_grad),
        "bytes": sum(t.numel() * t.element_size() for t in parameters + buffers),
        "training": bool(module.training),
        "submodules": sum(1 for _ in module.modules()) - 1,
    }


def _refuse_older_than(stamp: dict[str, Any], package: str, *, what: str) -> None:
    """Formats that newer versions of ``package`` write but older ones cannot read."""
    written, installed = str(stamp.get("version", "0")), _version(package)
    if _release(installed) < _release(written):
        raise MaterializerError(
            f"this {what} artifact was written by {package} {written} and {package} "
            f"{installed} is installed, which may not read it: upgrade "
            f"(pip install '{package}>={written}') or re-run the step that made it"
        )


def _release(version: str) -> tuple[int, ...]:
    parts = []
    for part in version.split("+", maxsplit=1)[0].split(".")[:3]:
        digits = "".join(c for c in part if c.isdigit()) if not part.isdigit() else part
        parts.append(int(digits or 0))
    return tuple(parts)


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


def _qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _logger() -> Any:
    import logging

    return logging.getLogger("gristmill")
