"""A run's code snapshot, verified and restored: for reproducing a past run (``reproduce``) and
for a worker whose host has no working copy of the project (``worker``). Nothing of a snapshot
is written or imported before its manifest and every file in it match the BLAKE3 hashes the run
recorded, so whoever can write the artifact bucket cannot choose the code a worker runs."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import sys
import threading
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from gristmill._hashing import hash_bytes
from gristmill.artifacts import ArtifactStore
from gristmill.errors import ArtifactStoreError, ConfigError
from gristmill.execution.environment import snapshot_code, source_file

_DIGEST = re.compile(r"[0-9a-f]{64}")  # BLAKE3, hex


def record_code(store: ArtifactStore) -> dict[str, Any]:
    """The snapshot of the user's code imported so far (``{"snapshot": hash, "files": n}``),
    recorded when a run starts so that its workers can import from it; empty when the store
    cannot take it (the run's end tries again and says what failed)."""
    try:
        return snapshot_code(store)
    except Exception:
        return {}


def recorded_snapshot(environment: Mapping[str, Any]) -> str | None:
    code = environment.get("code")
    snapshot = code.get("snapshot") if isinstance(code, Mapping) else None
    return snapshot if isinstance(snapshot, str) and snapshot else None


def verified_manifest(store: ArtifactStore, snapshot: str) -> dict[str, str]:
    """The manifest of code snapshot ``snapshot`` (relative path → BLAKE3 digest), checked
    against the hash the run recorded; an ArtifactStoreError names what does not match.
    Kept per process once verified (its content is what its hash says, for ever)."""
    key = (store.root, snapshot)
    with _manifests_lock:
        known = _manifests.get(key)
    if known is None:
        known = _read_manifest(store, snapshot)
        with _manifests_lock:
            if len(_manifests) >= 64:
                _manifests.clear()
            _manifests[key] = known
    return dict(known)


_manifests: dict[tuple[str, str], dict[str, str]] = {}
_manifests_lock = threading.Lock()


def _read_manifest(store: ArtifactStore, snapshot: str) -> dict[str, str]:
    if not isinstance(snapshot, str) or not _DIGEST.fullmatch(snapshot):
        raise ArtifactStoreError(
            f"the run's recorded code snapshot {snapshot!r} is not a BLAKE3 digest; refusing to "
            "restore its code (use --code current to run today's code)"
        )
    key = f"code/snapshots/{snapshot}.json"
    try:
        raw = store.get_blob(key)
    except ArtifactStoreError as exc:
        raise ArtifactStoreError(
            f"cannot read the run's code snapshot manifest {key}: {exc}. Was it deleted, or is "
            "another artifact store configured than the run's?"
        ) from exc
    if hash_bytes(raw) != snapshot:
        raise ArtifactStoreError(
            f"code snapshot manifest {key} in {store.root} does not match the hash the run "
            f"recorded ({snapshot[:12]}…): it was changed after the run; refusing to restore "
            "or import any of it"
        )
    try:
        listed = json.loads(raw)["files"]
    except (ValueError, KeyError, TypeError):
        listed = None
    if not isinstance(listed, dict):
        raise ArtifactStoreError(f"code snapshot manifest {key} is not a snapshot manifest")
    for relative, digest in listed.items():
        check_snapshot_path(relative, key)
        if not isinstance(digest, str) or not _DIGEST.fullmatch(digest):
            raise ArtifactStoreError(
                f"code snapshot manifest {key}: entry {relative!r} has no BLAKE3 digest"
            )
    return dict(listed)


def verified_snapshot(store: ArtifactStore, snapshot: str) -> dict[str, bytes]:
    """The files of code snapshot ``snapshot`` (the manifest hash a run recorded), relative
    path → bytes, each checked against the manifest, and the manifest against ``snapshot``.
    An ArtifactStoreError names what does not match; nothing is written or imported."""
    key = f"code/snapshots/{snapshot}.json"
    files: dict[str, bytes] = {}
    for relative, digest in sorted(verified_manifest(store, snapshot).items()):
        data = source_file(store, digest)
        if hash_bytes(data) != digest:
            raise ArtifactStoreError(
                f"snapshot file {relative!r} (code/files/{digest[:2]}/{digest} in {store.root}) "
                f"does not match its BLAKE3 digest in manifest {key}: it was changed after the "
                "run; refusing to restore or import any of the snapshot"
            )
        files[relative] = data
    return files


def check_snapshot_path(relative: Any, manifest: str) -> PurePosixPath:
    """A manifest entry as a path, if it is what snapshots hold: the relative import path of a
    module (``pkg/mod.py``: identifiers joined by ``/``, ending in ``.py``); else an
    ArtifactStoreError naming the entry."""
    why = None
    if not isinstance(relative, str) or not relative:
        why = "is not a path"
    elif relative.startswith("/") or "\\" in relative or ":" in relative:
        why = "is absolute (snapshot paths are relative to the restore folder)"
    elif ".." in relative.split("/"):
        why = "climbs out with '..'"
    elif not relative.endswith(".py"):
        why = "is not a Python source file (snapshots hold only .py files)"
    elif not all(part.isidentifier() for part in relative.removesuffix(".py").split("/")):
        why = "is not the path of an importable module"
    if why is not None:
        raise ArtifactStoreError(
            f"code snapshot manifest {manifest}: entry {relative!r} {why}; refusing to restore "
            "the snapshot"
        )
    return PurePosixPath(relative)


def restore_snapshot(files: dict[str, bytes], snapshot: str, target: Path) -> Path:
    """Write verified snapshot ``files`` under ``target/snapshot`` (once: a folder restored
    before is reused when its files still match) and return that folder."""
    folder = target / snapshot
    if (folder / ".complete").exists():
        if all(_same_file(folder / relative, data) for relative, data in files.items()):
            return folder
        shutil.rmtree(folder, ignore_errors=True)
    target.mkdir(mode=0o700, parents=True, exist_ok=True)
    partial = (target / f"{snapshot}.{os.getpid()}.partial").resolve()
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    for relative, data in files.items():
        path = (partial / relative).resolve()
        if not path.is_relative_to(partial):  # checked paths cannot, but never write outside
            raise ArtifactStoreError(f"snapshot entry {relative!r} resolves outside {partial}")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    (partial / ".complete").touch()
    try:
        partial.rename(folder)
    except OSError:  # restored meanwhile by another process
        shutil.rmtree(partial, ignore_errors=True)
    return folder


def _same_file(path: Path, data: bytes) -> bool:
    try:
        return path.read_bytes() == data
    except OSError:
        return False


# -- a worker's code ------------------------------------------------------------------------------


def module_files(module: str) -> list[str]:
    """The snapshot paths Python reads to import ``module``: each enclosing package's
    ``__init__.py``, then the module as a file or as a package."""
    parts = module.split(".")
    paths = ["/".join([*parts[:i], "__init__.py"]) for i in range(1, len(parts))]
    return [*paths, "/".join(parts) + ".py", "/".join([*parts, "__init__.py"])]


def working_copy_matches(module: str, manifest: Mapping[str, str]) -> bool | None:
    """Whether the files ``module`` would be imported from here (the first ``sys.path`` folder
    holding them) are the snapshot's: None when the snapshot does not hold the module (an
    installed package, a module the run did not import), False when a file is missing here or
    differs."""
    own = [p for p in module_files(module)[-2:] if p in manifest]
    if not own:
        return None
    for relative in [*module_files(module)[:-2], own[0]]:
        if relative not in manifest:
            continue  # a namespace package, or a parent the snapshot left out
        found = _first_on_path(relative)
        if found is None:
            return False
        try:
            if hash_bytes(found.read_bytes()) != manifest[relative]:
                return False
        except OSError:
            return False
    return True


def _first_on_path(relative: str) -> Path | None:
    for entry in sys.path:
        candidate = Path(entry or ".") / relative
        if candidate.is_file():
            return candidate
    return None


def importable(module: str) -> bool:
    """Whether ``module`` can be imported here (its parent packages are imported to know)."""
    if module in sys.modules:
        return True
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def snapshot_folder(project_directory: Path) -> Path:
    """Where a worker restores snapshots: the project's ``.gristmill/snapshots`` when this host
    has the project, else the user's cache (``$XDG_CACHE_HOME/gristmill/snapshots``), private
    to the user (a shared temporary folder would let others add modules to it)."""
    if project_directory.is_dir():
        return project_directory / "snapshots"
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "gristmill" / "snapshots"


def prepare_imports(
    *,
    modules: Mapping[str, str],
    environment: Mapping[str, Any],
    store: ArtifactStore,
    folder: Path,
) -> Path | None:
    """Make ``modules`` (a worker's own steps' modules, each → who needs it: ``step 'train' of
    run R``) importable as the run recorded them: from the working copy when each is there and
    unchanged; else from the run's verified snapshot, restored under ``folder`` and put first
    on ``sys.path`` (the folder is returned). A ConfigError, naming who needs the module and
    the fix, when a module is neither here nor in a snapshot."""
    snapshot = recorded_snapshot(environment)
    if snapshot is None:
        missing = sorted(m for m in modules if not importable(m))
        if missing:
            raise ConfigError(
                f"{modules[missing[0]]}: module '{missing[0]}' cannot be imported on this worker (not on "
                f"sys.path: {_shown_path()}) and the run recorded no code snapshot to import "
                "it from: install the project's code where the workers run (an image, or a "
                "folder on PYTHONPATH), or start the run with a gristmill that records its code "
                "snapshot when the run starts"
            )
        return None
    manifest = verified_manifest(store, snapshot)
    answers = {m: working_copy_matches(m, manifest) for m in modules}
    if all(answers[m] is not False for m in modules):
        neither = sorted(m for m, answer in answers.items() if answer is None and not importable(m))
        if neither:
            raise ConfigError(
                f"{modules[neither[0]]}: module '{neither[0]}' cannot be imported on this worker (not on "
                f"sys.path: {_shown_path()}) and is not in the run's code snapshot "
                f"{snapshot[:12]}: install it where the workers run (an image, or a folder on "
                "PYTHONPATH)"
            )
        return None
    restored = restore_snapshot(verified_snapshot(store, snapshot), snapshot, folder)
    if str(restored) not in sys.path:
        sys.path.insert(0, str(restored))
    # A module imported before from elsewhere (another run's code, in a long-lived worker)
    # would shadow the snapshot's: forget those, so the steps import this run's code.
    names = {p.removesuffix(".py").removesuffix("/__init__").replace("/", ".") for p in manifest}
    for name in names & set(sys.modules):
        file = getattr(sys.modules[name], "__file__", None) or ""
        if not file.startswith(str(restored)):
            del sys.modules[name]
    return restored


def _shown_path() -> str:
    shown = [entry or "." for entry in sys.path[:6]]
    return ", ".join(shown) + (", ..." if len(sys.path) > 6 else "")
