"""Artifact stores: where artifact bytes live, content-addressed and published atomically.

A materializer writes a value into a local *staging* directory; ``publish`` hashes what was
written and moves it to ``<root>/<hash[:2]>/<hash>``, once: the same bytes are stored once.
Data is complete at its address before any metadata row can point at it (a local rename is
atomic; on object stores a completion marker is written last). This module knows nothing of
the metadata store.

A flavor implements four small methods on an fsspec filesystem (``_exists``, ``_upload``,
``_download``, ``_remove``); the local flavor overrides publishing with a rename.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from gristmill._hashing import new_hasher
from gristmill.errors import ArtifactStoreError

COMPLETE_MARKER = ".gristmill-complete"
_CHUNK = 4 * 1024 * 1024


@dataclass(frozen=True)
class StoredContent:
    """Where published bytes live, their content hash and total size."""

    uri: str
    content_hash: str
    size: int


def hash_directory(directory: Path) -> tuple[str, int]:
    """The content hash of a directory tree (relative paths, sizes and file bytes), and its
    size. One read pass; files were just written, so they come from the page cache."""
    files = sorted(p for p in directory.rglob("*") if p.is_file() and p.name != COMPLETE_MARKER)
    tree = new_hasher()
    total = 0
    buffer = bytearray(_CHUNK)
    view = memoryview(buffer)
    for path in files:
        file_hash = new_hasher()
        size = 0
        with open(path, "rb", buffering=0) as handle:
            while True:
                read = handle.readinto(buffer)
                if not read:
                    break
                file_hash.update(view[:read])
                size += read
        total += size
        tree.update(
            f"{path.relative_to(directory).as_posix()}\0{size}\0{file_hash.hexdigest()}\n".encode()
        )
    return tree.hexdigest(), total


class ArtifactStore:
    """An artifact store on an fsspec filesystem rooted at ``root`` (a path or URL)."""

    flavor: ClassVar[str] = "fsspec"
    protocol: ClassVar[str | None] = None

    def __init__(
        self, root: str, *, trusted: bool = False, storage_options: dict[str, Any] | None = None
    ):
        self.root = root.rstrip("/")
        self.trusted = trusted
        self.storage_options = dict(storage_options or {})
        self._fs: Any = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.root!r})"

    @property
    def fs(self) -> Any:
        if self._fs is None:
            import fsspec

            self._fs, _ = fsspec.core.url_to_fs(self.root, **self.storage_options)
        return self._fs

    # -- addresses ----------------------------------------------------------------------------

    def content_uri(self, content_hash: str) -> str:
        return f"{self.root}/{content_hash[:2]}/{content_hash}"

    def logs_uri(self, run_id: str, step_name: str) -> str:
        return f"{self.root}/logs/{run_id}/{step_name}.log"

    # -- writing ------------------------------------------------------------------------------

    @contextmanager
    def staging(self) -> Iterator[Path]:
        """A fresh local directory for a materializer to write into; removed afterwards
        unless ``publish`` moved it."""
        directory = Path(tempfile.mkdtemp(prefix="gristmill-stage-"))
        try:
            yield directory
        finally:
            shutil.rmtree(directory, ignore_errors=True)

    def publish(self, staged: Path) -> StoredContent:
        """Store a staged directory at its content address (once) and return where it is."""
        content_hash, size = hash_directory(staged)
        uri = self.content_uri(content_hash)
        try:
            if not self._exists(f"{uri}/{COMPLETE_MARKER}"):
                self._upload(staged, uri)
        except OSError as exc:
            raise ArtifactStoreError(f"could not store artifact data at {uri}: {exc}") from exc
        return StoredContent(uri, content_hash, size)

    def write_text(self, uri: str, text: str) -> None:
        try:
            self.fs.makedirs(uri.rsplit("/", 1)[0], exist_ok=True)
            with self.fs.open(uri, "w") as handle:
                handle.write(text)
        except OSError as exc:
            raise ArtifactStoreError(f"could not write {uri}: {exc}") from exc

    # -- reading ------------------------------------------------------------------------------

    def exists(self, uri: str) -> bool:
        return self._exists(f"{uri}/{COMPLETE_MARKER}")

    def local_directory(self, uri: str) -> Path:
        """A local directory holding the content at ``uri`` (downloaded once into a cache:
        content never changes at an address)."""
        cache = Path(os.environ.get("GRISTMILL_CACHE_DIR", Path.home() / ".cache" / "gristmill"))
        target = cache / "artifacts" / uri.rstrip("/").rsplit("/", 1)[-1]
        if (target / COMPLETE_MARKER).exists():
            return target
        if not self.exists(uri):
            raise ArtifactStoreError(
                f"artifact data at {uri} is missing or incomplete; it may have been deleted "
                "from the artifact store"
            )
        partial = target.with_name(f"{target.name}.{uuid.uuid4().hex}.partial")
        partial.parent.mkdir(parents=True, exist_ok=True)
        self._download(uri, partial)
        (partial / COMPLETE_MARKER).touch()
        try:
            partial.rename(target)
        except OSError:  # another process finished the same download first
            shutil.rmtree(partial, ignore_errors=True)
        return target

    def read_text(self, uri: str) -> str:
        try:
            with self.fs.open(uri, "r") as handle:
                return str(handle.read())
        except FileNotFoundError:
            raise ArtifactStoreError(f"{uri} does not exist in the artifact store") from None

    # -- what a flavor provides ---------------------------------------------------------------

    def _exists(self, uri: str) -> bool:
        return bool(self.fs.exists(uri))

    def _upload(self, staged: Path, uri: str) -> None:
        # Every file first, the completion marker last: readers trust only complete content.
        made: set[str] = set()
        for path in sorted(p for p in staged.rglob("*") if p.is_file()):
            target = f"{uri}/{path.relative_to(staged).as_posix()}"
            parent = target.rsplit("/", 1)[0]
            if parent not in made:  # a no-op on object stores; needed on real filesystems
                self.fs.makedirs(parent, exist_ok=True)
                made.add(parent)
            self.fs.put_file(str(path), target)
        self.fs.pipe_file(f"{uri}/{COMPLETE_MARKER}", b"")

    def _download(self, uri: str, target: Path) -> None:
        target.mkdir(parents=True, exist_ok=True)
        for remote in self.fs.find(uri):
            relative = remote[len(self.fs._strip_protocol(uri)) :].lstrip("/")
            if relative == COMPLETE_MARKER:
                continue
            local = target / relative
            local.parent.mkdir(parents=True, exist_ok=True)
            self.fs.get_file(remote, str(local))

    def _remove(self, uri: str) -> None:
        self.fs.rm(uri, recursive=True)


class LocalArtifactStore(ArtifactStore):
    """Artifacts in a local directory (the default, under ``.gristmill/artifacts``).

    Staging happens inside the store so publishing is one atomic ``rename``; readers get the
    stored directory itself, so numpy arrays load memory-mapped with no copy.
    """

    flavor = "local"
    protocol = "file"

    def __init__(
        self, root: str, *, trusted: bool = True, storage_options: dict[str, Any] | None = None
    ):
        if root.startswith("file://"):
            root = root[len("file://") :]
        super().__init__(
            str(Path(root).expanduser().resolve()), trusted=trusted, storage_options=storage_options
        )
        self._staging_root = Path(self.root) / ".staging"

    @contextmanager
    def staging(self) -> Iterator[Path]:
        self._staging_root.mkdir(parents=True, exist_ok=True)
        directory = self._staging_root / uuid.uuid4().hex
        directory.mkdir()
        try:
            yield directory
        finally:
            if directory.exists():
                shutil.rmtree(directory, ignore_errors=True)

    def publish(self, staged: Path) -> StoredContent:
        content_hash, size = hash_directory(staged)
        uri = self.content_uri(content_hash)
        target = Path(uri)
        if not target.exists():
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                staged.rename(target)
            except OSError as exc:
                if not target.exists():  # not a concurrent writer of the same bytes
                    raise ArtifactStoreError(
                        f"could not store artifact data at {uri}: {exc}"
                    ) from exc
        return StoredContent(uri, content_hash, size)

    def exists(self, uri: str) -> bool:
        return Path(uri).is_dir()

    def local_directory(self, uri: str) -> Path:
        path = Path(uri)
        if not path.is_dir():
            raise ArtifactStoreError(
                f"artifact data at {uri} is missing; it may have been deleted from the artifact store"
            )
        return path

    def write_text(self, uri: str, text: str) -> None:
        path = Path(uri)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
        temporary.write_text(text, encoding="utf-8")
        temporary.replace(path)

    def read_text(self, uri: str) -> str:
        try:
            return Path(uri).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ArtifactStoreError(f"{uri} does not exist in the artifact store") from None
