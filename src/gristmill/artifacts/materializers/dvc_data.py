"""The ``dvc`` materializer: stores a DVCPointer (path, md5, rev, repo of DVC-tracked data) as
a small JSON document and loads it as the ``pathlib.Path`` of that data, checked against the
md5 (``gristmill.artifacts.dvc_data``). The data itself stays where DVC keeps it."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from gristmill.artifacts.materializers.base import Materializer, module_loaded

POINTER_FILE = "dvc.json"


class DVCMaterializer(Materializer):
    name: ClassVar[str] = "dvc"
    priority: ClassVar[int] = 50

    @classmethod
    def can_handle(cls, data_type: type) -> bool:
        module = module_loaded("gristmill.artifacts.dvc_data")
        return module is not None and issubclass(data_type, module.DVCPointer)

    def save(self, value: Any, directory: Path) -> None:
        from gristmill.artifacts.dvc_data import dumps

        (directory / POINTER_FILE).write_text(dumps(value), encoding="utf-8")

    def load(self, directory: Path, data_type: str) -> Path:
        from gristmill.artifacts.dvc_data import loads, materialize

        return materialize(loads((directory / POINTER_FILE).read_text(encoding="utf-8")))

    def describe(self, value: Any) -> tuple[str, dict[str, Any]]:
        metadata = {
            "dvc_path": value.path,
            "md5": value.md5,
            "rev": value.rev,
            "git_rev": value.git_rev,
            "repo": value.repo,
        }
        preview = f"{value.label()} (DVC md5 {value.md5})"
        return preview, {k: v for k, v in metadata.items() if v is not None}
