"""DVC-tracked data as step inputs: read the md5 DVC recorded for a path (its ``.dvc`` file or
``dvc.lock`` entry, at the workspace or a git revision) and hand a step the data with that md5.
Reads DVC repositories through the ``dvc`` package's own API; knows nothing of the metadata
store. ``dvc`` is imported only when a DVC input is used (``pip install "gristmill[dvc]"``).

Where the data comes from: for the workspace (``rev=None`` and a local repository) the file or
folder itself, after checking that its md5 is the recorded one; for a git revision (or a
remote repository) a copy fetched by DVC into ``.gristmill/dvc/<md5>/``, made read-only.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gristmill.errors import DataVersionError, MissingIntegrationError, NotFoundError

# Where fetched revisions of DVC data are kept, inside the project's ``.gristmill/``.
CACHE_DIRECTORY = "dvc"
_PROJECT_DIRECTORY = ".gristmill"


@dataclass(frozen=True)
class DVCPointer:
    """One version of DVC-tracked data: what a run records as the artifact version its step
    reads. ``path``, ``md5``, ``rev`` and ``repo`` are its content (its content hash changes
    when the md5 does); ``git_rev``, the commit the entry was read at, is recorded beside it."""

    path: str
    md5: str
    rev: str | None = None
    repo: str | None = None
    git_rev: str | None = None

    def content(self) -> dict[str, Any]:
        return {"path": self.path, "md5": self.md5, "rev": self.rev, "repo": self.repo}

    @property
    def in_workspace(self) -> bool:
        """Read from the working tree (else from a copy of a revision's data)."""
        return self.rev is None and (self.repo is None or Path(self.repo).is_dir())

    def label(self) -> str:
        where = f" in {self.repo}" if self.repo is not None else ""
        return self.path + where + (f" at revision {self.rev}" if self.rev is not None else "")


def _dvc() -> Any:
    try:
        import dvc.api  # type: ignore[import-untyped,import-not-found,unused-ignore]
        import dvc.repo  # type: ignore[import-untyped,import-not-found,unused-ignore]
    except ImportError as exc:
        raise MissingIntegrationError("dvc", "dvc", "a DVCPath step input") from exc
    return dvc.api


def locate(path: str, *, rev: str | None = None, repo: str | None = None) -> DVCPointer:
    """The version of ``path`` DVC recorded at ``rev`` (None: the workspace) in ``repo`` (None:
    the repository around the working directory): its md5 and the git commit it was read at.
    For the workspace, the data must also be there with that md5. NotFoundError when DVC does
    not track the path; DataVersionError when its data is not the recorded one."""
    api = _dvc()
    pointer = DVCPointer(path, "", rev, repo)
    try:
        fs = api.DVCFileSystem(repo, rev=rev)
    except Exception as exc:
        raise DataVersionError(f"cannot open {_repository(repo, rev)}: {_reason(exc)}") from exc
    try:
        try:
            info = fs.info(path)
        except FileNotFoundError:
            info = None
        # The entry DVC recorded (a .dvc file or dvc.lock output), not the workspace file.
        entry: dict[str, Any] = (info or {}).get("dvc_info") or {}
        md5 = entry.get("md5")
        if not md5 or not info or not entry.get("isdvc"):
            raise NotFoundError(
                f"{pointer.label()} is not tracked by DVC (no .dvc file or dvc.lock entry names "
                f"it{'' if info else ', and there is no such path'}): run `dvc add {path}` "
                f"(then `git add {path}.dvc` and commit), or give the path of a tracked file"
            )
        git_rev = _git_rev(fs.repo)
        hash_name = _hash_name(info)
    finally:
        fs.close()
    pointer = DVCPointer(path, str(md5), rev, repo, git_rev)
    if pointer.in_workspace:
        found = workspace_md5(pointer, hash_name)
        if found is None:
            raise DataVersionError(
                f"{path} is tracked by DVC (md5 {md5}) but is not in the workspace: run "
                f"`dvc pull {path}` (or `dvc checkout {path}`)"
            )
        if found != md5:
            raise DataVersionError(
                f"{path} in the workspace (md5 {found}) is not the data its DVC entry records "
                f"(md5 {md5}): run `dvc add {path}` to record the new data (or `dvc commit` "
                f"for a stage output), or `dvc checkout {path}` to bring the recorded data back"
            )
    else:
        materialize(pointer)  # fetched now: a revision without its data fails the run's start
    return pointer


def materialize(pointer: DVCPointer) -> Path:
    """A local path holding exactly the data ``pointer`` records: the workspace path after
    checking its md5, or a read-only copy fetched by DVC into ``.gristmill/dvc/``."""
    if pointer.in_workspace:
        found = workspace_md5(pointer)
        if found != pointer.md5:
            now = "is not in the workspace" if found is None else f"is now md5 {found}"
            raise DataVersionError(
                f"{pointer.path} changed since the run recorded md5 {pointer.md5} (it {now}): "
                f"run `dvc checkout {pointer.path}` (or `dvc pull {pointer.path}`) to bring "
                "that data back, or re-run the pipeline to use the data there now"
            )
        return _repository_root(pointer.repo) / pointer.path
    target = cache_root() / pointer.md5[:2] / pointer.md5 / Path(pointer.path).name
    if target.exists():
        return target
    _fetch(pointer, target)
    return target


def workspace_md5(pointer: DVCPointer, hash_name: str = "md5") -> str | None:
    """The md5 DVC computes for the workspace data of ``pointer`` (a folder's ends in
    ``.dir``), None when it is missing."""
    _dvc()
    from dvc.repo import Repo  # type: ignore[import-untyped,import-not-found,unused-ignore]
    from dvc_data.hashfile.build import build  # type: ignore[import-untyped,import-not-found,unused-ignore]
    from dvc_objects.fs.local import LocalFileSystem  # type: ignore[import-untyped,import-not-found,unused-ignore]

    root = _repository_root(pointer.repo)
    local = root / pointer.path
    if not local.exists():
        return None
    with Repo(str(root)) as repo:
        odb = repo.cache.legacy if hash_name == "md5-dos2unix" else repo.cache.local
        local_fs: Any = LocalFileSystem()  # type: ignore[no-untyped-call,unused-ignore]
        # dry_run: hash only; nothing is written to DVC's cache.
        _, _, obj = build(odb, str(local), local_fs, hash_name, ignore=repo.dvcignore, dry_run=True)
    return str(obj.hash_info.value)


def cache_root() -> Path:
    """``.gristmill/dvc`` of the project (``GRISTMILL_PROJECT``, else the nearest folder above
    the working directory that has a ``.gristmill``, else the working directory)."""
    configured = os.environ.get("GRISTMILL_PROJECT")
    if configured:
        return Path(configured) / _PROJECT_DIRECTORY / CACHE_DIRECTORY
    here = Path.cwd()
    for folder in (here, *here.parents):
        if (folder / _PROJECT_DIRECTORY).is_dir():
            return folder / _PROJECT_DIRECTORY / CACHE_DIRECTORY
    return here / _PROJECT_DIRECTORY / CACHE_DIRECTORY


def dumps(pointer: DVCPointer) -> str:
    return json.dumps(pointer.content(), sort_keys=True)


def loads(text: str) -> DVCPointer:
    data = json.loads(text)
    return DVCPointer(data["path"], data["md5"], data.get("rev"), data.get("repo"))


def _fetch(pointer: DVCPointer, target: Path) -> None:
    """Copy the revision's data into ``target`` (atomically, read-only), after checking that
    the revision still records the same md5 (a moved tag or branch must not swap the data)."""
    api = _dvc()
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".fetch-", dir=target.parent))
    try:
        try:
            fs = api.DVCFileSystem(pointer.repo, rev=pointer.rev)
            try:
                md5 = (fs.info(pointer.path).get("dvc_info") or {}).get("md5")
                if md5 != pointer.md5:
                    raise DataVersionError(
                        f"{pointer.label()} now records md5 {md5}, not the md5 {pointer.md5} "
                        "the run recorded (the revision was moved?): give the commit the run "
                        "recorded, or re-run the pipeline"
                    )
                fs.get(pointer.path, str(staging / "data"), recursive=True)
            finally:
                fs.close()
        except DataVersionError:
            raise
        except Exception as exc:
            raise DataVersionError(
                f"DVC could not fetch {pointer.label()} (md5 {pointer.md5}): {_reason(exc)}; "
                "is the data in the DVC cache or a configured remote (`dvc push` where it was "
                "added, `dvc remote list`)?"
            ) from exc
        fetched = staging / "data"
        _make_read_only(fetched)
        try:
            fetched.rename(target)
        except OSError:
            if not target.exists():  # else another process fetched it first: same data
                raise
    finally:
        _remove(staging)


def _make_read_only(path: Path) -> None:
    entries = [path, *path.rglob("*")] if path.is_dir() else [path]
    for entry in reversed(entries):  # files before the folders that hold them
        mode = entry.stat().st_mode
        entry.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def _remove(path: Path) -> None:
    def writable(function: Any, name: str, _: Any) -> None:
        Path(name).chmod(stat.S_IRWXU)
        function(name)

    if path.exists():
        shutil.rmtree(path, onerror=writable)


def _repository_root(repo: str | None) -> Path:
    _dvc()
    from dvc.repo import Repo  # type: ignore[import-untyped,import-not-found,unused-ignore]

    try:
        return Path(Repo.find_root(repo))
    except Exception as exc:
        raise DataVersionError(f"cannot open {_repository(repo, None)}: {_reason(exc)}") from exc


def _git_rev(repo: Any) -> str | None:
    """The commit DVC read the entry at (the workspace: HEAD); None without git history."""
    try:
        return str(repo.get_rev())
    except Exception:
        return None


def _hash_name(info: dict[str, Any]) -> str:
    entry = (info.get("dvc_info") or {}).get("entry")
    name = getattr(getattr(entry, "hash_info", None), "name", None)
    return str(name) if name else "md5"


def _repository(repo: str | None, rev: str | None) -> str:
    text = f"the DVC repository {repo}" if repo else f"the DVC repository around {Path.cwd()}"
    return text + (f" at revision {rev}" if rev else "")


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
