"""Content hashing shared by specs, cache keys and the artifact store (BLAKE3: cryptographic and
several GB/s, so hashing a 100 MB artifact costs milliseconds, not a second pass of sha256)."""

from __future__ import annotations

import json
from os import PathLike
from typing import Any

from blake3 import blake3

HASH_NAME = "blake3"


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace: equal data gives equal text, hence equal hashes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def hash_bytes(data: bytes | bytearray | memoryview) -> str:
    return blake3(data).hexdigest()


def hash_text(text: str) -> str:
    return blake3(text.encode()).hexdigest()


def hash_json(value: Any) -> str:
    return hash_text(canonical_json(value))


def hash_file(path: str | PathLike[str]) -> str:
    """The hash of a file's bytes (``hash_bytes`` of its content), read memory-mapped and hashed
    on every core: for a file just written, which comes from the page cache."""
    hasher = blake3(max_threads=blake3.AUTO)
    hasher.update_mmap(path)
    return str(hasher.hexdigest())


def new_hasher() -> Any:
    """An incremental hasher (``update(bytes)``, ``hexdigest()``) for streaming writes."""
    return blake3()
