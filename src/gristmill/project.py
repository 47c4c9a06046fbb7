"""The project: the folder holding ``.gristmill/`` (project settings, the embedded SQLite store,
the local artifact store), and what it resolves to: the metadata store URL and active stack.

Resolution, highest first: environment (``GRISTMILL_PROJECT``, ``GRISTMILL_STORE_URL``,
``GRISTMILL_STACK``), then the project's ``.gristmill/config.json``, then defaults.

Reading never creates anything: outside a project (and without ``GRISTMILL_STORE_URL``) a read
is an error that says to run ``gristmill init``. Only ``init`` and running a pipeline
(``store(create=True)``) make ``.gristmill/``.
"""

from __future__ import annotations

import atexit
import base64
import gc
import json
import os
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gristmill.artifacts import ArtifactStore
from gristmill.errors import ConfigError
from gristmill.stacks import DEFAULT_STACK, Stack, load_stack
from gristmill.store import MetadataStore, open_store
from gristmill.store.rest.connection import connected_url

if TYPE_CHECKING:
    from gristmill.stacks.secrets import Secrets

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
        """Change project settings; a value of None removes the setting. The project must
        exist (``init`` makes it): settings never create a half-made ``.gristmill/``."""
        if not self.exists:
            raise ConfigError(self.missing_message())
        data = {**self.settings(), **changes}
        data = {k: v for k, v in data.items() if v is not None}
        path = self.directory / CONFIG_FILE
        temporary = path.with_suffix(".tmp")
        temporary.unlink(missing_ok=True)
        # 0600 whatever the umask: the file may hold a store URL with its password.
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(data, indent=2, sort_keys=True) + "\n")
        temporary.replace(path)

    def init(self) -> bool:
        """Create ``.gristmill/`` if missing; True if it was created."""
        if self.exists:
            return False
        self.root.mkdir(parents=True, exist_ok=True)
        # 0700: the database, logs, artifacts and secrets key are this user's alone, whatever
        # the umask (on a shared machine the default would make them world-readable).
        self.directory.mkdir(mode=0o700, exist_ok=True)
        self.directory.chmod(0o700)
        (self.directory / ".gitignore").write_text("*\n", encoding="utf-8")
        self.save_settings(active_stack=DEFAULT_STACK)
        create_key_file(self.directory)
        return True

    @property
    def store_url(self) -> str:
        url = os.environ.get("GRISTMILL_STORE_URL") or self.settings().get("store_url")
        if url:
            return str(url)
        # `gristmill connect`: this user's server, below the project's own setting.
        return connected_url() or f"sqlite:///{self.directory / 'metadata.db'}"

    @property
    def stack_name(self) -> str:
        return os.environ.get("GRISTMILL_STACK") or str(
            self.settings().get("active_stack") or DEFAULT_STACK
        )

    def store(self, *, create: bool = False) -> MetadataStore:
        """The metadata store, opened once per process and URL.

        Outside a project this is a ConfigError that says to run ``gristmill init``, and nothing
        is created; ``create=True`` (running a pipeline) makes the project first instead.
        """
        url = self.store_url
        store = _stores.get(url)
        if store is not None:
            return store
        if create:
            if not self.exists and not os.environ.get("GRISTMILL_STORE_URL"):
                self.init()
        else:
            self.check_readable()
        return shared_store(url)

    def check_readable(self) -> None:
        """Raise a ConfigError, creating nothing, when there is nothing here to read: no
        ``.gristmill/`` and no GRISTMILL_STORE_URL, or a URL naming a SQLite file that does not
        exist."""
        if self.exists:
            return
        url = os.environ.get("GRISTMILL_STORE_URL")
        if not url:
            if connected_url():  # a server saved by `gristmill connect`
                return
            raise ConfigError(self.missing_message())
        check_store_exists(url, "GRISTMILL_STORE_URL")

    def missing_message(self) -> str:
        if _explicit_root() == self.root:
            return (
                f"no gristmill project in {self.root} (GRISTMILL_PROJECT or --project); "
                f"run `gristmill init {self.root}` or pass another --project"
            )
        return (
            f"no gristmill project in {self.root} or any parent folder; "
            "run `gristmill init` or pass --project"
        )

    def stack(self, name: str | None = None) -> Stack:
        """A stack from the store (the active one by default)."""
        return load_stack(self.store(), name or self.stack_name)

    def secrets(self) -> Secrets:
        from gristmill.stacks.secrets import Secrets

        return Secrets(self.store(), self.directory)

    def resolve(self, config: Mapping[str, Any], where: str) -> dict[str, Any]:
        """Component settings with their secret references resolved (no decryption, and no
        cryptography import, when there are none)."""
        from gristmill.stacks.secrets import references

        if not references(config):
            return dict(config)
        return self.secrets().resolve(config, where=where)

    def artifact_store(self, stack: Stack | None = None) -> ArtifactStore:
        """The artifact store of a stack (the active one by default), ready to use."""
        stack = stack or self.stack()
        return stack.artifact_store(
            resolve=self.resolve, default_root=str(self.directory / "artifacts")
        )

    def orchestrator(self, stack: Stack) -> Any:
        return stack.orchestrator(resolve=self.resolve)


def create_key_file(directory: Path) -> Path:
    """The project's secrets key (a Fernet key: 32 random bytes, url-safe base64), mode 0600."""
    path = directory / "secrets.key"
    if not path.exists():
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(base64.urlsafe_b64encode(os.urandom(32)).decode() + "\n")
    return path


def shared_store(url: str) -> MetadataStore:
    """The metadata store at ``url``, opened once per process (a ``Client`` built from a URL
    shares it with everything else in the process)."""
    store = _stores.get(url)
    if store is None:
        with _stores_lock:
            store = _stores.get(url)
            if store is None:
                store = open_store(url)
                # The default stack (and its 'local' components, which other stacks use
                # too) exists in every store from the start.
                load_stack(store, DEFAULT_STACK)
                if not _stores:
                    atexit.register(_at_exit)
                _stores[url] = store
    return store


def check_store_exists(url: str, source: str) -> None:
    """A ConfigError when ``url`` is ``sqlite:///PATH`` and PATH does not exist (opening it
    would create an empty database); other URLs are checked when opened."""
    if not url.startswith("sqlite"):
        return
    _, sep, rest = url.partition(":///")
    path = rest.split("?", 1)[0]
    if not sep or not path or path == ":memory:" or path.startswith("file:"):
        return
    if not Path(path).expanduser().exists():
        raise ConfigError(
            f"the metadata store {path} ({source}) does not exist: nothing was recorded there "
            "yet; check the URL, or run a pipeline first"
        )


def _explicit_root() -> Path | None:
    explicit = os.environ.get("GRISTMILL_PROJECT")
    return Path(explicit).expanduser().resolve() if explicit else None


def find_project(start: Path | str | None = None) -> Project:
    """GRISTMILL_PROJECT, else the nearest folder above ``start`` (default: the working
    directory) that holds ``.gristmill/``, else ``start`` itself (a project that does not
    exist yet: reading it is an error, running a pipeline creates it)."""
    explicit = _explicit_root()
    if explicit is not None:
        return Project(explicit)
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / PROJECT_DIR).is_dir():
            check_safe_directory(folder)
            return Project(folder)
    return Project(here)


def run_code_folders(environment: Mapping[str, Any], root: Path | None) -> list[Path]:
    """The folders a run's own modules were imported from, as far as they can be trusted:
    the folder of the script it ran (``python pipeline.py``) and its working directory (what
    ``gristmill run`` puts on ``sys.path``), each only inside the project ``root``, then
    ``root`` itself. A folder named by the store outside the project is never used: whoever
    can write the store must not choose what this process imports."""
    if root is None:
        return []
    root = root.resolve()
    found: list[Path] = []
    cwd = environment.get("cwd")
    argv = environment.get("argv")
    candidates: list[Path] = []
    if isinstance(cwd, str) and cwd:
        if isinstance(argv, list) and argv and isinstance(argv[0], str) and argv[0].endswith(".py"):
            candidates.append((Path(cwd) / argv[0]).parent)
        candidates.append(Path(cwd))
    candidates.append(root)
    for candidate in candidates:
        try:
            folder = candidate.resolve()
        except OSError:
            continue
        if folder.is_relative_to(root) and folder.is_dir() and folder not in found:
            found.append(folder)
    return found


def make_importable(folders: list[Path], *, first: bool) -> None:
    """Put ``folders`` on ``sys.path`` (those missing), in order, at its start (``first``:
    as a run had them, ahead of installed packages) or at its end (only for names nothing
    else provides)."""
    missing = [str(f) for f in folders if str(f) not in sys.path]
    if first:
        sys.path[0:0] = missing
    else:
        sys.path.extend(missing)


SAFE_DIRECTORIES_VARIABLE = "GRISTMILL_SAFE_DIRECTORIES"


def check_safe_directory(root: Path) -> None:
    """A ConfigError when ``root/.gristmill``, found by walking up from the working directory,
    is owned by another user or writable by group or others (as git's ``safe.directory``):
    on a shared machine anyone could have made ``/tmp/.gristmill`` to receive the runs (and
    feed the code) of everyone working below it. ``GRISTMILL_SAFE_DIRECTORIES`` lists the
    project folders to trust anyway (``os.pathsep``-separated; ``*`` trusts every one).
    A project named explicitly (GRISTMILL_PROJECT, --project) is not checked."""
    if not hasattr(os, "geteuid"):  # Windows: no POSIX owners and modes to check
        return
    directory = root / PROJECT_DIR
    info = directory.stat()
    reasons = []
    if info.st_uid != os.geteuid():
        reasons.append(f"owned by uid {info.st_uid}, not you (uid {os.geteuid()})")
    if info.st_mode & 0o022:
        writable = " and ".join(
            who for who, bit in (("group", 0o020), ("others", 0o002)) if info.st_mode & bit
        )
        reasons.append(f"writable by {writable} (mode {info.st_mode & 0o777:o})")
    if not reasons or _trusted_directory(root):
        return
    raise ConfigError(
        f"refusing {directory}: {'; '.join(reasons)}. Whoever can write it can change what "
        f"your runs record and which code they run. If you trust it, set "
        f"{SAFE_DIRECTORIES_VARIABLE}={root} (or `chmod go-w {directory}` if it is yours); "
        "or run `gristmill init` in your own project folder"
    )


def _trusted_directory(root: Path) -> bool:
    listed = os.environ.get(SAFE_DIRECTORIES_VARIABLE, "")
    for entry in filter(None, listed.split(os.pathsep)):
        if entry.strip() == "*" or Path(entry).expanduser().resolve() == root:
            return True
    return False


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
