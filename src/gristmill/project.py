"""The project: the folder holding ``.gristmill/`` (project settings, the embedded SQLite store,
the local artifact store), and what it resolves to: the metadata store URL and active stack.

Resolution, highest first: environment (``GRISTMILL_PROJECT``, ``GRISTMILL_STORE_URL``,
``GRISTMILL_STACK``), then the project's ``.gristmill/config.json``, then defaults.
"""

from __future__ import annotations

import atexit
import gc
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gristmill.artifacts import ArtifactStore
from gristmill.errors import ConfigError
from gristmill.stacks import DEFAULT_STACK, Stack, local_stack
from gristmill.store import MetadataStore, open_store

PROJECT_DIR = ".gristmill"
CONFIG_FILE = "config.json"

_stores: dict[str, MetadataStore] = {}
_settings_cache: dict[Path, tuple[int, dict[str, Any]]] = {}
_stores_lock = threading.Lock()


@dataclass(frozen=True)
class Project:
    root: Path

    @property
    def directory(self) -> Path:
        return self.root / PROJECT_DIR

    @property
    def exists(self) -> bool:
        return self.directory.is_dir()

    def settings(self) -> dict[str, Any]:
        path = self.directory / CONFIG_FILE
        try:
            stamp = path.stat().st_mtime_ns
        except FileNotFoundError:
            return {}
        cached = _settings_cache.get(path)
        if cached is not None and cached[0] == stamp:
            return dict(cached[1])
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{path}: not valid JSON ({exc}); fix or delete the file") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected a JSON object")
        _settings_cache[path] = (stamp, data)
        return dict(data)

    def save_settings(self, **changes: Any) -> None:
        data = {**self.settings(), **changes}
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / CONFIG_FILE
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        temporary.replace(path)

    def init(self) -> bool:
        """Create ``.gristmill/`` if missing; True if it was created."""
        if self.exists:
            return False
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / ".gitignore").write_text("*\n", encoding="utf-8")
        self.save_settings(active_stack=DEFAULT_STACK)
        return True

    @property
    def store_url(self) -> str:
        url = os.environ.get("GRISTMILL_STORE_URL") or self.settings().get("store_url")
        if url:
            return str(url)
        return f"sqlite:///{self.directory / 'metadata.db'}"

    @property
    def stack_name(self) -> str:
        return os.environ.get("GRISTMILL_STACK") or str(
            self.settings().get("active_stack") or DEFAULT_STACK
        )

    def store(self) -> MetadataStore:
        """The metadata store, opened once per process and URL."""
        url = self.store_url
        store = _stores.get(url)
        if store is None:
            with _stores_lock:
                store = _stores.get(url)
                if store is None:
                    if url.startswith("sqlite") and not os.environ.get("GRISTMILL_STORE_URL"):
                        self.init()
                    store = open_store(url)
                    if not _stores:
                        atexit.register(_at_exit)
                    _stores[url] = store
        return store

    def stack(self) -> Stack:
        name = self.stack_name
        if name != DEFAULT_STACK:
            raise ConfigError(
                f"stack '{name}' is not known: this version has only the '{DEFAULT_STACK}' stack "
                "(unset GRISTMILL_STACK)"
            )
        return local_stack(str(self.directory / "artifacts"))

    def artifact_store(self) -> ArtifactStore:
        return self.stack().artifact_store()


def find_project(start: Path | str | None = None) -> Project:
    """GRISTMILL_PROJECT, else the nearest folder above ``start`` (default: the working
    directory) that holds ``.gristmill/``, else ``start`` itself."""
    explicit = os.environ.get("GRISTMILL_PROJECT")
    if explicit:
        return Project(Path(explicit).expanduser().resolve())
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / PROJECT_DIR).is_dir():
            return Project(folder)
    return Project(here)


def _at_exit() -> None:
    close_stores()
    # Tens of thousands of objects (SQLAlchemy's among them) would otherwise be walked by the
    # collector once more during interpreter shutdown: ~25 ms of a 300 ms pipeline run.
    # Python does not promise finalizers at exit, so freezing them loses nothing.
    gc.freeze()


def close_stores() -> None:
    """Dispose every store this process opened (tests switch projects)."""
    with _stores_lock:
        for store in _stores.values():
            store.close()
        _stores.clear()
