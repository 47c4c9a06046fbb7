"""What a run records about the code and environment it ran in, enough to reproduce it:

- git commit and dirty flag, when the working directory is a checkout;
- a content-addressed snapshot of the user's own source files that were imported (each file
  stored once in the artifact store under ``code/files/``, a manifest under ``code/snapshots/``);
- the installed packages (name==version, a lock-like list, stored once per distinct list);
- Python, platform and gristmill versions.

The slow parts run on a background thread while the steps run.
"""

from __future__ import annotations

import json
import logging
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from gristmill._hashing import canonical_json, hash_bytes, hash_text
from gristmill._source import is_user_module, main_module_name
from gristmill.artifacts import ArtifactStore

logger = logging.getLogger("gristmill")
# Runs started within this many seconds of a git probe in the same folder reuse its answer
# (a notebook or a loop of runs would otherwise spawn git twice per run).
GIT_PROBE_TTL_SECONDS = 10.0
_git_answers: dict[str, tuple[float, dict[str, Any]]] = {}
_packages: tuple[str, list[str]] | None = None


def basic_environment() -> dict[str, Any]:
    from gristmill._version import __version__

    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(terse=True),
        "gristmill": __version__,
        "argv": recorded_argv(sys.argv),
        "cwd": str(Path.cwd()),
    }


def recorded_argv(argv: list[str]) -> list[str]:
    """The command line as a run records it (in a store others read): URL passwords
    (``--store postgresql+psycopg://u:PASSWORD@host/db``) and the secret values this process
    resolved are masked."""
    from gristmill.store import redact_url_passwords

    secrets = sys.modules.get("gristmill.stacks.secrets")
    recorded = [redact_url_passwords(arg) for arg in argv]
    return [secrets.redact(arg) for arg in recorded] if secrets is not None else recorded


class EnvironmentProbe:
    """Started with a run; ``result()`` at its end gives the environment to record."""

    def __init__(self, artifact_store: ArtifactStore) -> None:
        self._store = artifact_store
        self._folder = str(Path.cwd())
        self._basic = basic_environment()
        self._git: dict[str, Any] = {}
        self._packages: dict[str, Any] = {}
        self._error: str | None = None  # why the package list could not be recorded
        self._thread = threading.Thread(
            target=self._probe, name="gristmill-environment", daemon=True
        )
        self._thread.start()

    @property
    def basic(self) -> dict[str, Any]:
        return dict(self._basic)

    def _probe(self) -> None:
        # Nothing may escape this thread: an unreachable store loses the package list (said
        # once, at the run's end), not the run, and prints no thread traceback.
        try:
            self._git = _git_state(self._folder)
            self._packages = _record_packages(self._store)
        except Exception as exc:
            self._error = f"{type(exc).__name__}: {exc}"

    def result(self) -> dict[str, Any]:
        """The whole environment; snapshots the user's imported source files now, when every
        module the steps needed has been imported."""
        environment = dict(self._basic)
        missing: list[tuple[str, str]] = []  # what is missing, why
        try:
            environment["code"] = snapshot_code(self._store)
        except Exception as exc:
            missing.append(("code snapshot", f"{type(exc).__name__}: {exc}"))
        self._thread.join(timeout=30)
        if self._git:
            environment["git"] = self._git
        if self._packages:
            environment["packages"] = self._packages
        elif self._error is not None:
            missing.append(("package list", self._error))
        if missing:  # one line: the cause is usually the same (an unreachable store)
            logger.warning(
                "the run is recorded without its %s: %s",
                " and ".join(what for what, _ in missing),
                missing[0][1],
            )
        return environment


def _git_state(folder: str) -> dict[str, Any]:
    cached = _git_answers.get(folder)
    if cached is not None and time.monotonic() - cached[0] < GIT_PROBE_TTL_SECONDS:
        return cached[1]
    result: dict[str, Any] = {}
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
            cwd=folder,
        )
        if commit.returncode == 0:
            status = subprocess.run(
                ["git", "status", "--porcelain", "--untracked-files=no"],
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
                cwd=folder,
            )
            result = {"commit": commit.stdout.strip(), "dirty": bool(status.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        result = {}
    _git_answers[folder] = (time.monotonic(), result)
    return result


# -- code snapshots --------------------------------------------------------------------------------


def user_source_files() -> dict[str, Path]:
    """Relative import path (``pkg/mod.py``) → file, for every imported module of the user's
    own code; restoring them under one folder on ``sys.path`` makes them importable again."""
    found: dict[str, Path] = {}
    for name, module in list(sys.modules.items()):
        known = _module_sources.get(name)
        if known is None or known[0] is not module:
            known = _module_sources[name] = (module, _user_source(name, module))
        if known[1] is not None:
            found[known[1][0]] = known[1][1]
    return found


# Per process: each imported module's answer, so a loop of runs only looks at new modules.
_module_sources: dict[str, tuple[object, tuple[str, Path] | None]] = {}


def _user_source(name: str, module: object) -> tuple[str, Path] | None:
    file = getattr(module, "__file__", None)
    if not file or not file.endswith(".py") or not is_user_module(name):
        return None
    module_name = main_module_name() if name == "__main__" else name
    if module_name == "__main__":
        return None
    parts = module_name.split(".")
    path = Path(file)
    if path.name == "__init__.py":
        relative = Path(*parts, "__init__.py")
    else:
        relative = Path(*parts[:-1], f"{parts[-1]}.py")
    if path.is_file() and path.as_posix().endswith(relative.as_posix()):
        return relative.as_posix(), path
    return None


def snapshot_code(store: ArtifactStore) -> dict[str, Any]:
    """Store the user's imported source files (each once) and a manifest of them; returns
    ``{"snapshot": manifest hash, "files": count}``."""
    files: dict[str, str] = {}
    for relative, path in sorted(user_source_files().items()):
        try:
            stat = path.stat()
        except FileNotFoundError:  # deleted since it was imported: nothing to snapshot
            continue
        known = _file_digests.get(str(path))
        if known is not None and known[0] == (stat.st_mtime_ns, stat.st_size):
            digest = known[1]
        else:
            data = path.read_bytes()
            digest = hash_bytes(data)
            _file_digests[str(path)] = ((stat.st_mtime_ns, stat.st_size), digest)
        _put_once(store, f"code/files/{digest[:2]}/{digest}", lambda path=path: path.read_bytes())
        files[relative] = digest
    manifest = canonical_json({"files": files})
    snapshot = hash_text(manifest)
    _put_once(store, f"code/snapshots/{snapshot}.json", manifest.encode)
    return {"snapshot": snapshot, "files": len(files)}


# Per process: which files were hashed (by mtime and size) and which blobs a store holds, so a
# loop of runs does not read and check the same sources again.
_file_digests: dict[str, tuple[tuple[int, int], str]] = {}
_stored: set[tuple[str, str]] = set()


def _put_once(store: ArtifactStore, key: str, data: Any) -> None:
    if (store.root, key) not in _stored:
        store.put_blob(key, data())
        _stored.add((store.root, key))


def snapshot_manifest(store: ArtifactStore, snapshot: str) -> dict[str, str]:
    data = json.loads(store.get_blob(f"code/snapshots/{snapshot}.json"))
    files: dict[str, str] = data["files"]
    return files


def source_file(store: ArtifactStore, digest: str) -> bytes:
    return store.get_blob(f"code/files/{digest[:2]}/{digest}")


# -- installed packages ----------------------------------------------------------------------------


def installed_packages() -> list[str]:
    """``name==version`` of every installed distribution, sorted, the first on ``sys.path``
    winning. Read from the ``*.dist-info`` / ``*.egg-info`` folder names (``name-version``), as
    installers write them: parsing every METADATA file would cost ~2 ms per package."""
    global _packages
    key = _site_key()
    if _packages is not None and _packages[0] == key:
        return list(_packages[1])
    found: dict[str, str] = {}
    for entry in sys.path:
        try:
            names = [p.name for p in Path(entry or ".").iterdir()]
        except OSError:
            continue
        for name in names:
            stem, dot, suffix = name.rpartition(".")
            if not dot or suffix not in ("dist-info", "egg-info"):
                continue
            project, _, version = stem.partition("-")
            version = version.split("-py", 1)[0]
            canonical = project.lower().replace("_", "-").replace(".", "-")
            if project and version and canonical not in found:
                found[canonical] = f"{canonical}=={version}"
    result = sorted(found.values())
    _packages = (key, result)
    return list(result)


def _site_key() -> str:
    """Changes when packages are installed or removed (their folders' modification times)."""
    stamps = []
    for entry in sys.path:
        try:
            stamps.append(f"{entry}:{Path(entry or '.').stat().st_mtime_ns}")
        except OSError:
            continue
    return hash_text("|".join(stamps))


def _record_packages(store: ArtifactStore) -> dict[str, Any]:
    packages = installed_packages()
    text = canonical_json(packages)
    digest = hash_text(text)
    store.put_blob(f"code/packages/{digest}.json", text.encode())
    return {"hash": digest, "count": len(packages)}


def package_list(store: ArtifactStore, digest: str) -> list[str]:
    result: list[str] = json.loads(store.get_blob(f"code/packages/{digest}.json"))
    return result
