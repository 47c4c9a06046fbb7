"""Artifact stores: where artifact bytes live, content-addressed and published atomically.

A materializer writes a value into a local *staging* directory; ``publish`` hashes what was
written and moves it to ``<root>/<hash[:2]>/<hash>``, once: the same bytes are stored once.
Data is complete at its address before any metadata row can point at it (a local rename is
atomic; on object stores a completion marker is written last). This module knows nothing of
the metadata store.

A flavor implements four small methods on an fsspec filesystem (``_exists``, ``_upload``,
``_download``, ``_remove``); the local flavor overrides publishing with a rename.

Every failure of a remote store comes out as one ``ArtifactStoreError``; a store that cannot be
reached (refused or timed-out connections, unknown hosts) is retried a bounded number of times,
then reported as ``cannot reach artifact store <root>: <cause>`` and not asked again for
``UNREACHABLE_SECONDS``, so a failing run's remaining writes fail at once instead of each waiting.

What a metadata row or a bucket listing says is data, not a path to follow: an artifact URI is
read only when it is a content address in this store (``check_address``), a download writes
only inside its cache folder, and downloaded content must hash to its address.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from gristmill._hashing import new_hasher
from gristmill._plugins import Flavor
from gristmill.errors import ArtifactStoreError, GristmillError

COMPLETE_MARKER = ".gristmill-complete"
STAGING_MAX_AGE_SECONDS = 3600.0
_swept_roots: set[str] = set()  # staging folders already swept by this process
_CHUNK = 4 * 1024 * 1024
# A content hash as ``hash_directory`` writes it (BLAKE3, 32 bytes, lower-case hex).
_CONTENT_HASH = re.compile(r"[0-9a-f]{64}")
_T = TypeVar("_T")

# After a store was found unreachable, later operations fail at once for this long.
UNREACHABLE_SECONDS = 10.0
# Pauses between attempts to reach a store whose client does not retry by itself.
RETRY_PAUSES = (0.2, 0.5)
# Client-library errors meaning "could not connect", recognized by name (nothing is imported).
_UNREACHABLE_ERRORS = frozenset(
    {
        "EndpointConnectionError",  # botocore
        "ConnectTimeoutError",  # botocore, urllib3
        "ConnectionClosedError",  # botocore
        "ClientConnectorError",  # aiohttp
        "ServerTimeoutError",  # aiohttp
        "ServiceRequestError",  # azure-core
        "TransportError",  # google-auth
    }
)


def unreachable_cause(exc: BaseException) -> str | None:
    """A one-line cause when ``exc`` (or an exception it came from) says the store could not
    be reached: a refused or timed-out connection, an unknown host. None otherwise."""
    current: BaseException | None = exc
    for _ in range(8):  # chains are short; a cycle must not loop
        if current is None:
            return None
        if (
            isinstance(current, (ConnectionError, TimeoutError, socket.gaierror))
            or type(current).__name__ in _UNREACHABLE_ERRORS
        ):
            return _one_line(exc)
        current = current.__cause__ or current.__context__
    return None


def _one_line(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True)
class StoredContent:
    """Where published bytes live, their content hash and total size."""

    uri: str
    content_hash: str
    size: int


def _hashed(name: str) -> bool:
    """Whether a file of this name is part of the content (and its hash): the completion
    marker, at any depth, is not. Hashing and downloading use this one rule."""
    return name != COMPLETE_MARKER


def _files(directory: str, prefix: str = "") -> list[tuple[str, str]]:
    """(relative posix path, absolute path) of every file below ``directory``, sorted."""
    found: list[tuple[str, str]] = []
    with os.scandir(directory) as entries:
        for entry in entries:
            relative = f"{prefix}{entry.name}"
            if entry.is_dir(follow_symlinks=False):
                found.extend(_files(entry.path, relative + "/"))
            elif _hashed(entry.name):
                found.append((relative, entry.path))
    found.sort()
    return found


def _empty(directory: Path) -> None:
    with os.scandir(directory) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                Path(entry.path).unlink(missing_ok=True)


def hash_directory(directory: Path, known: Mapping[str, str] | None = None) -> tuple[str, int]:
    """The content hash of a directory tree (relative paths, sizes and file bytes), and its
    size. One read pass; files were just written, so they come from the page cache. ``known``
    gives the BLAKE3 digest of files whose writer hashed them already (no second pass)."""
    tree = new_hasher()
    total = 0
    buffer: bytearray | None = None
    for relative, path in _files(str(directory)):
        if known and relative in known:
            size = Path(path).stat().st_size
            total += size
            tree.update(f"{relative}\0{size}\0{known[relative]}\n".encode())
            continue
        file_hash = new_hasher()
        size = 0
        with open(path, "rb", buffering=0) as handle:
            if os.fstat(handle.fileno()).st_size <= _CHUNK:
                data = handle.read()  # small files, the common case: one read
                file_hash.update(data)
                size = len(data)
            else:
                if buffer is None:
                    buffer = bytearray(_CHUNK)
                view = memoryview(buffer)
                while read := handle.readinto(buffer):
                    file_hash.update(view[:read])
                    size += read
        total += size
        tree.update(f"{relative}\0{size}\0{file_hash.hexdigest()}\n".encode())
    return tree.hexdigest(), total


class ArtifactStore(Flavor):
    """An artifact store on an fsspec filesystem rooted at ``root`` (a path or URL)."""

    flavor: ClassVar[str] = "fsspec"
    protocol: ClassVar[str | None] = None
    # Attempts to reach the store per operation; flavors whose client retries (bounded) by
    # itself set 1, so retries do not multiply.
    connect_attempts: ClassVar[int] = 1 + len(RETRY_PAUSES)

    def __init__(
        self, root: str, *, trusted: bool = False, storage_options: dict[str, Any] | None = None
    ):
        self.root = root.rstrip("/")
        self.trusted = trusted
        self.storage_options = dict(storage_options or {})
        self._fs: Any = None
        # (monotonic time until which it is not asked again, the error) once found unreachable
        self._unreachable: tuple[float, str] | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.root!r})"

    @property
    def fs(self) -> Any:
        if self._fs is None:
            import fsspec

            self._fs, _ = fsspec.core.url_to_fs(self.root, **self.storage_options)
        return self._fs

    def _io(self, action: str, operation: Callable[[], _T]) -> _T:
        """Run one operation on the filesystem: its failures become one ArtifactStoreError
        (``could not <action>: ...``, or ``cannot reach artifact store ...``); an unreachable
        store is tried ``connect_attempts`` times. FileNotFoundError is left to the caller."""
        known = self._unreachable
        if known is not None:
            if time.monotonic() < known[0]:
                raise ArtifactStoreError(known[1])
            self._unreachable = None
        attempt = 0
        while True:
            attempt += 1
            try:
                return operation()
            except (GristmillError, FileNotFoundError, ImportError):
                raise
            except Exception as exc:
                cause = unreachable_cause(exc)
                if cause is None:
                    raise ArtifactStoreError(f"could not {action}: {_one_line(exc)}") from exc
                if attempt < self.connect_attempts:
                    time.sleep(RETRY_PAUSES[min(attempt, len(RETRY_PAUSES)) - 1])
                    continue
                message = f"cannot reach artifact store {self.root}: {cause}"
                self._unreachable = (time.monotonic() + UNREACHABLE_SECONDS, message)
                # The cause is in the message; its chain (hundreds of lines of client-library
                # frames) would only bury it.
                raise ArtifactStoreError(message) from None

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

    def publish(self, staged: Path, known: Mapping[str, str] | None = None) -> StoredContent:
        """Store a staged directory at its content address (once) and return where it is;
        ``known`` as for ``hash_directory``."""
        content_hash, size = hash_directory(staged, known)
        uri = self.content_uri(content_hash)

        def store() -> None:
            if not self._exists(f"{uri}/{COMPLETE_MARKER}"):
                self._upload(staged, uri)

        self._io(f"store artifact data at {uri}", store)
        return StoredContent(uri, content_hash, size)

    def put_blob(self, key: str, data: bytes) -> str:
        """Store ``data`` at ``<root>/<key>`` unless something is there already (keys are
        content-addressed, so what is there is the same); returns the URI."""
        uri = f"{self.root}/{key}"

        def put() -> None:
            if not self.fs.exists(uri):
                self.fs.makedirs(uri.rsplit("/", 1)[0], exist_ok=True)
                self.fs.pipe_file(uri, data)

        self._io(f"write {uri}", put)
        return uri

    def get_blob(self, key: str) -> bytes:
        uri = f"{self.root}/{key}"
        try:
            return self._io(f"read {uri}", lambda: bytes(self.fs.cat_file(uri)))
        except FileNotFoundError:
            raise ArtifactStoreError(f"{uri} does not exist in the artifact store") from None

    def write_text(self, uri: str, text: str) -> None:
        def write() -> None:
            self.fs.makedirs(uri.rsplit("/", 1)[0], exist_ok=True)
            with self.fs.open(uri, "w") as handle:
                handle.write(text)

        self._io(f"write {uri}", write)

    # -- reading ------------------------------------------------------------------------------

    def holds(self, uri: str) -> bool:
        """Whether ``uri`` is an address in this store (cache hits must be: another stack's
        store may be gone tomorrow)."""
        return uri.startswith(self.root + "/")

    def check_address(self, uri: str) -> str:
        """The content hash that ``uri`` addresses; an ArtifactStoreError unless it is a content
        address in this store, ``<root>/<hash[:2]>/<hash>`` exactly as ``publish`` writes it.
        A URI comes from a metadata row, which someone with write access to a shared store can
        change: it must not lead a reader to ``/tmp/x`` or ``<root>/../..``."""
        prefix = self.root + "/"
        parts = uri[len(prefix) :].split("/") if uri.startswith(prefix) else []
        if len(parts) != 2 or _CONTENT_HASH.fullmatch(parts[1]) is None or parts[0] != parts[1][:2]:
            raise ArtifactStoreError(
                f"refusing to read artifact data at {uri!r}: it is not a content address in the "
                f"artifact store {self.root} (expected {self.root}/<hh>/<hash>); the metadata "
                "row that points there was changed outside gristmill, or names another store"
            )
        return parts[1]

    def _check_inside(self, uri: str) -> None:
        """Refuse a URI (of logs, say) outside this store, or climbing out of it with ``..``."""
        relative = uri[len(self.root) + 1 :] if self.holds(uri) else ""
        if not relative or any(part in ("", ".", "..") for part in relative.split("/")):
            raise ArtifactStoreError(
                f"refusing to read {uri!r}: it is not inside the artifact store {self.root}"
            )

    def exists(self, uri: str) -> bool:
        marker = f"{uri}/{COMPLETE_MARKER}"
        return self.holds(uri) and self._io(f"check {uri}", lambda: self._exists(marker))

    def local_directory(self, uri: str) -> Path:
        """A local directory holding the content at ``uri`` (downloaded once into a cache:
        content never changes at an address). The download is checked against the address:
        a file that does not belong to the content, or a changed one, is refused."""
        content_hash = self.check_address(uri)
        cache = Path(os.environ.get("GRISTMILL_CACHE_DIR", Path.home() / ".cache" / "gristmill"))
        target = cache / "artifacts" / content_hash
        if (target / COMPLETE_MARKER).exists():
            return target
        if not self.exists(uri):
            raise ArtifactStoreError(
                f"artifact data at {uri} is missing or incomplete; it may have been deleted "
                "from the artifact store"
            )
        partial = target.with_name(f"{target.name}.{uuid.uuid4().hex}.partial")
        partial.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._io(f"read {uri}", lambda: self._download(uri, partial))
            if hash_directory(partial)[0] != content_hash:
                raise ArtifactStoreError(
                    f"refusing to use the artifact data at {uri}: the files there do not hash to "
                    "its content address, so they were changed or added in the artifact store "
                    "outside gristmill"
                )
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
        (partial / COMPLETE_MARKER).touch()
        try:
            partial.rename(target)
        except OSError:  # another process finished the same download first
            shutil.rmtree(partial, ignore_errors=True)
        return target

    def read_text(self, uri: str) -> str:
        self._check_inside(uri)

        def read() -> str:
            with self.fs.open(uri, "r") as handle:
                return str(handle.read())

        try:
            return self._io(f"read {uri}", read)
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
        # Every listed key is checked before anything is written: a key is data from the
        # bucket, and ``<hash>/../../x`` is a valid S3 key.
        target.mkdir(parents=True, exist_ok=True)
        inside = target.resolve()
        base = self.fs._strip_protocol(uri).rstrip("/") + "/"
        wanted: list[tuple[str, Path]] = []
        for remote in self.fs.find(uri):
            relative = remote[len(base) :] if remote.startswith(base) else ""
            if _hashed(relative.rsplit("/", 1)[-1]):
                wanted.append((remote, _local_path(inside, relative, remote, uri)))
        for remote, local in wanted:
            local.parent.mkdir(parents=True, exist_ok=True)
            self.fs.get_file(remote, str(local))

    def _remove(self, uri: str) -> None:
        self.fs.rm(uri, recursive=True)


def _local_path(inside: Path, relative: str, remote: str, uri: str) -> Path:
    """Where the object ``remote``, at ``relative`` below ``uri``, goes under the folder
    ``inside`` (resolved); an ArtifactStoreError for a name that would land anywhere else."""
    parts = relative.split("/")
    local = inside.joinpath(*parts)
    if (
        not relative
        or "\\" in relative
        or "\0" in relative
        or any(part in ("", ".", "..") for part in parts)
        or not local.resolve().is_relative_to(inside)
    ):
        raise ArtifactStoreError(
            f"refusing to download the artifact data at {uri}: it holds the object {remote!r}, "
            "whose name is not a plain path inside it (gristmill never writes one; someone "
            "put it in the artifact store)"
        )
    return local


class LocalArtifactStore(ArtifactStore):
    """Artifacts in a local directory (the default, under ``.gristmill/artifacts``).

    Staging happens inside the store so publishing is one atomic ``rename``; readers get the
    stored directory itself, so numpy arrays load memory-mapped with no copy.
    """

    flavor = "local"
    protocol = "file"
    config_model = "gristmill.artifacts.configs:LocalArtifactStoreConfig"
    requires = ()  # fsspec's local filesystem: a core dependency
    in_project = True  # without a root, it lives under the project's .gristmill/

    def __init__(
        self,
        root: str | None = None,
        *,
        trusted: bool = True,
        storage_options: dict[str, Any] | None = None,
    ):
        if not root:
            raise ArtifactStoreError("the local artifact store needs a root folder")
        if root.startswith("file://"):
            root = root[len("file://") :]
        super().__init__(
            str(Path(root).expanduser().resolve()), trusted=trusted, storage_options=storage_options
        )
        self._staging_root = Path(self.root) / ".staging"
        self._spare: list[Path] = []
        self._spare_lock = threading.Lock()
        self._prefixes: set[str] = set()

    def _sweep_staging(self) -> None:
        """Remove staging directories left by processes that were killed mid-write (and spare
        ones of finished processes); nothing ever points at them."""
        _swept_roots.add(self.root)
        cutoff = time.time() - STAGING_MAX_AGE_SECONDS
        with os.scandir(self._staging_root) as entries:
            for entry in entries:
                try:
                    if entry.stat(follow_symlinks=False).st_mtime < cutoff:
                        shutil.rmtree(entry.path, ignore_errors=True)
                except OSError:
                    continue

    @contextmanager
    def staging(self) -> Iterator[Path]:
        with self._spare_lock:
            directory = self._spare.pop() if self._spare else None
        if directory is None:
            try:
                if not self._staging_root.is_dir():
                    self._staging_root.mkdir(parents=True, exist_ok=True)
                elif self.root not in _swept_roots:
                    self._sweep_staging()
                directory = self._staging_root / uuid.uuid4().hex
                directory.mkdir()
            except OSError as exc:
                raise ArtifactStoreError(
                    f"cannot write to the artifact store at {self.root}: {exc.strerror or exc}"
                ) from exc
        try:
            yield directory
        finally:
            # Published directories were renamed away; an unpublished one (same bytes already
            # stored, or a failed save) is emptied and kept for the next output.
            if directory.exists():
                _empty(directory)
                with self._spare_lock:
                    self._spare.append(directory)

    def publish(self, staged: Path, known: Mapping[str, str] | None = None) -> StoredContent:
        content_hash, size = hash_directory(staged, known)
        uri = self.content_uri(content_hash)
        target = Path(uri)
        if not target.exists():
            try:
                if content_hash[:2] not in self._prefixes:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    self._prefixes.add(content_hash[:2])
                staged.rename(target)
            except OSError as exc:
                if not target.exists():  # not a concurrent writer of the same bytes
                    raise ArtifactStoreError(
                        f"could not store artifact data at {uri}: {exc}"
                    ) from exc
        return StoredContent(uri, content_hash, size)

    def exists(self, uri: str) -> bool:
        return self.holds(uri) and Path(uri).is_dir()

    def local_directory(self, uri: str) -> Path:
        self.check_address(uri)
        path = Path(uri)
        if not path.is_dir():
            raise ArtifactStoreError(
                f"artifact data at {uri} is missing; it may have been deleted from the artifact store"
            )
        return path

    def write_text(self, uri: str, text: str) -> None:
        path = Path(uri)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
            temporary.write_text(text, encoding="utf-8")
            temporary.replace(path)
        except OSError as exc:
            raise ArtifactStoreError(f"could not write {uri}: {exc.strerror or exc}") from exc

    def put_blob(self, key: str, data: bytes) -> str:
        path = Path(self.root) / key
        if not path.exists():
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
                temporary.write_bytes(data)
                temporary.replace(path)
            except OSError as exc:
                raise ArtifactStoreError(f"could not write {path}: {exc.strerror or exc}") from exc
        return str(path)

    def get_blob(self, key: str) -> bytes:
        try:
            return (Path(self.root) / key).read_bytes()
        except FileNotFoundError:
            raise ArtifactStoreError(
                f"{self.root}/{key} does not exist in the artifact store"
            ) from None

    def read_text(self, uri: str) -> str:
        self._check_inside(uri)
        try:
            return Path(uri).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ArtifactStoreError(f"{uri} does not exist in the artifact store") from None
