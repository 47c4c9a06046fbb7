"""Hugging Face: ``datasets`` Datasets as Arrow (``save_to_disk``, loaded memory-mapped) and
``transformers`` models and tokenizers (``save_pretrained``, safetensors weights). Loading runs
no code from the artifact: no pickle, no ``trust_remote_code``, and a class named in the
artifact is used only when it is one of transformers' own (or already imported)."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

from gristmill.artifacts.materializers.base import (
    Materializer,
    Visualization,
    check_library_stamp,
    class_named,
    clip,
    module_loaded,
    write_library_stamp,
)
from gristmill.errors import MaterializerError

FOLDER = "hf"  # what save_to_disk/save_pretrained write, beside the library stamp
DESCRIPTION = "gristmill.json"  # what the transformers materializer needs to rebuild the value


class HFDatasetMaterializer(Materializer):
    """A ``datasets.Dataset`` or ``DatasetDict`` in Arrow files (``save_to_disk``; an index
    mapping from ``select``/``shuffle`` is applied first), loaded memory-mapped.

    The loaded dataset is opened through a private temporary folder of links to the stored
    files, so the cache files ``map()``/``filter()`` write go there and never into the
    content-addressed store, whose bytes must not change."""

    name = "hf_dataset"
    priority = 20

    @classmethod
    def can_handle(cls, data_type: type) -> bool:
        datasets = module_loaded("datasets")
        return datasets is not None and issubclass(
            data_type, (datasets.Dataset, datasets.DatasetDict)
        )

    def save(self, value: Any, directory: Path) -> None:
        value.save_to_disk(str(directory / FOLDER))
        write_library_stamp(directory, "datasets", pyarrow=_version("pyarrow"))

    def load(self, directory: Path, data_type: str) -> Any:
        datasets = importlib.import_module("datasets")  # no type information

        check_library_stamp(directory, same="major")
        return datasets.load_from_disk(str(_linked_folder(directory / FOLDER)))

    def describe(self, value: Any) -> tuple[str, dict[str, Any]]:
        splits = _splits(value)
        meta = {
            "splits": {name: {"rows": d.num_rows, "columns": d.column_names} for name, d in splits}
        }
        shown = ", ".join(f"{name or 'rows'}: {d.num_rows}" for name, d in splits[:6])
        columns = ", ".join(str(c) for c in splits[0][1].column_names[:8]) if splits else ""
        return clip(f"{type(value).__name__} ({shown}) [{columns}]"), meta

    def visualize(self, value: Any) -> Visualization | None:
        sections = []
        for split, dataset in _splits(value)[:10]:
            head = dataset.select(range(min(5, dataset.num_rows))).to_list()
            columns = dataset.column_names[:50]
            sections.append(
                {
                    "kind": "table",
                    "title": f"{split + ': ' if split else ''}{dataset.num_rows} rows, head",
                    "columns": columns,
                    "rows": [[clip(repr(row[c]), 80) for c in columns] for row in head],
                }
            )
            sections.append(
                {
                    "kind": "table",
                    "title": f"{split + ': ' if split else ''}features",
                    "columns": ["column", "type"],
                    "rows": [[str(k), clip(str(v), 120)] for k, v in dataset.features.items()][
                        :100
                    ],
                }
            )
        return {"kind": "sections", "sections": sections}


class TransformersMaterializer(Materializer):
    """A ``transformers`` PyTorch model (``PreTrainedModel``) or tokenizer
    (``PreTrainedTokenizerBase``) in its ``save_pretrained`` folder, weights as safetensors.

    It comes back as its own class when that is one of transformers' model classes (the
    architecture the config records is looked up in transformers' auto-model tables, never
    imported by name) or a class already imported in the loading process; a tokenizer comes
    back through ``AutoTokenizer`` without remote code. Dtype and training mode are kept."""

    name = "transformers"
    # Above torch_module (20): a PreTrainedModel is an nn.Module, but TorchScript would lose
    # its config, generation and tokenizer-facing methods.
    priority = 30

    @classmethod
    def can_handle(cls, data_type: type) -> bool:
        transformers = module_loaded("transformers")
        if transformers is None:
            return False
        # Looked up in the namespace: the package's lazy __getattr__ imports the torch part.
        kinds = (transformers.PreTrainedModel, transformers.PreTrainedTokenizerBase)
        return issubclass(data_type, kinds)

    def save(self, value: Any, directory: Path) -> None:
        import transformers

        if isinstance(value, transformers.PreTrainedModel):
            value.save_pretrained(str(directory / FOLDER), safe_serialization=True)
            description = {
                "kind": "model",
                "class": type(value).__name__,
                "dtype": str(value.dtype).removeprefix("torch."),
                "training": bool(value.training),
            }
        else:
            value.save_pretrained(str(directory / FOLDER))
            description = {"kind": "tokenizer", "class": type(value).__name__}
        (directory / DESCRIPTION).write_text(json.dumps(description), encoding="utf-8")
        write_library_stamp(directory, "transformers")

    def load(self, directory: Path, data_type: str) -> Any:
        import transformers

        check_library_stamp(directory, same="major")
        description = json.loads((directory / DESCRIPTION).read_text(encoding="utf-8"))
        folder = str(directory / FOLDER)
        if description.get("kind") == "tokenizer":
            tokenizer_class: Any = class_named(data_type, transformers.PreTrainedTokenizerBase)
            if tokenizer_class is not None:
                return tokenizer_class.from_pretrained(folder, local_files_only=True)
            return transformers.AutoTokenizer.from_pretrained(
                folder, local_files_only=True, trust_remote_code=False
            )
        model_class: Any = class_named(data_type, transformers.PreTrainedModel) or _architecture(
            folder, data_type
        )
        model = model_class.from_pretrained(
            folder,
            local_files_only=True,
            use_safetensors=True,
            dtype=_torch_dtype(str(description.get("dtype", "float32"))),
        )
        if description.get("training"):
            model.train()
        return model

    def describe(self, value: Any) -> tuple[str, dict[str, Any]]:
        fields = _transformers_fields(value)
        meta = {k: v for k, v in fields.items() if k in ("parameters", "vocabulary", "model_type")}
        if "parameters" in fields:
            return clip(f"{fields['class']}: {fields['parameters']:,} parameters"), meta
        return clip(f"{fields['class']}: vocabulary of {fields['vocabulary']:,}"), meta

    def visualize(self, value: Any) -> Visualization | None:
        return {"kind": "fields", "fields": _transformers_fields(value)}


def _architecture(folder: str, data_type: str) -> Any:
    """The model class the saved config names, if it is in one of transformers' own
    auto-model tables; a MaterializerError otherwise (the name is data, not code to import)."""
    import transformers
    from transformers.models.auto import modeling_auto

    config = json.loads((Path(folder) / "config.json").read_text(encoding="utf-8"))
    names = config.get("architectures") or []
    name = str(names[0]) if names else data_type.rpartition(".")[2]
    known: set[str] = set()
    for table_name in dir(modeling_auto):
        if table_name.startswith("MODEL") and table_name.endswith("_MAPPING_NAMES"):
            for entry in getattr(modeling_auto, table_name).values():
                known.update([entry] if isinstance(entry, str) else entry)
    if name in known:
        cls = getattr(transformers, name, None)
        if isinstance(cls, type) and issubclass(cls, transformers.PreTrainedModel):
            return cls
    raise MaterializerError(
        f"the model class '{clip(name, 80)}' ({clip(data_type, 160)}) is not one of "
        "transformers' model classes and is not imported in this process: import the module "
        "that defines it before loading"
    )


def _torch_dtype(name: str) -> Any:
    import torch

    dtype = getattr(torch, name, None)
    if not isinstance(dtype, torch.dtype):
        raise MaterializerError(f"unknown torch dtype '{clip(name, 40)}' recorded")
    return dtype


def _transformers_fields(value: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {"class": f"{type(value).__module__}.{type(value).__qualname__}"}
    config = getattr(value, "config", None)
    if config is not None:  # a model
        fields.update(
            model_type=str(getattr(config, "model_type", "")),
            parameters=int(value.num_parameters()),
            dtype=str(value.dtype),
            bytes=int(value.get_memory_footprint()),
            training=bool(value.training),
        )
    else:
        fields.update(
            vocabulary=len(value),
            max_length=int(min(value.model_max_length, 2**31 - 1)),
            special_tokens={k: clip(str(v), 40) for k, v in value.special_tokens_map.items()},
        )
    return fields


def _splits(value: Any) -> list[tuple[str, Any]]:
    if hasattr(value, "num_rows") and not isinstance(value, dict):
        return [("", value)]
    return list(value.items())


def _linked_folder(stored: Path) -> Path:
    """A private temporary copy of ``stored`` made of links to its files (a copy where links
    are not allowed), removed when the process exits."""
    import atexit
    import shutil
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="gristmill-hf-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    for source in stored.rglob("*"):
        target = folder / source.relative_to(stored)
        if source.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            target.symlink_to(source.resolve())
        except OSError:
            shutil.copyfile(source, target)
    return folder


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)
