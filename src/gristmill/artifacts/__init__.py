"""Artifacts: the artifact store (fsspec, content-addressed, atomic publish) and the
materializers that turn values into files and back. Knows nothing of the metadata store."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

from gristmill.artifacts.materializers.base import (
    MAX_VISUALIZATION_BYTES,
    CannotMaterialize,
    LoadsAs,
    candidates_for,
    data_type_name,
    materializer_named,
)
from gristmill.artifacts.store import (
    ArtifactStore,
    LocalArtifactStore,
    StoredContent,
    hash_directory,
)
from gristmill.errors import MaterializerError, UnsafeArtifactError

__all__ = [
    "ArtifactStore",
    "LocalArtifactStore",
    "SavedArtifact",
    "StoredContent",
    "load_artifact",
    "save_artifact",
]

logger = logging.getLogger("gristmill")
_warned_pickle: set[str] = set()


@dataclass(frozen=True)
class SavedArtifact:
    content: StoredContent
    materializer: str
    data_type: str
    preview: str
    metadata: dict[str, Any]


def save_artifact(store: ArtifactStore, value: Any, *, where: str) -> SavedArtifact:
    """Materialize ``value`` with the best materializer for its type and publish it.
    ``where`` names the output for messages (``step 'train', output 'model'``)."""
    data_type = type(value)
    for materializer_class in candidates_for(data_type):
        materializer = materializer_class()
        with store.staging() as directory:
            try:
                known = materializer.save(value, directory)
            except CannotMaterialize:
                continue
            except Exception as exc:
                raise MaterializerError(
                    f"{where}: materializer '{materializer.name}' could not store a "
                    f"{data_type_name(data_type)}: {exc}"
                ) from exc
            if not materializer.safe:
                _warn_pickle(data_type, where, materializer.name)
            preview, metadata = materializer.describe(value)
            visualization = bounded_visualization(materializer, value, where)
            if visualization is not None:
                metadata = {**metadata, "visualization": visualization}
            content = store.publish(directory, known or None)
        return SavedArtifact(
            content, materializer.name, data_type_name(data_type), preview, metadata
        )
    raise MaterializerError(
        f"{where}: no materializer can store a {data_type_name(data_type)}; register one in the "
        "'gristmill.materializers' entry-point group"
    )


def bounded_visualization(materializer: Any, value: Any, where: str) -> Any:
    """The materializer's visualization of ``value`` if it is small JSON; a visualization that
    fails or is too large is left out (logged), never failing the step."""
    import json

    try:
        visualization = materializer.visualize(value)
        if visualization is None:
            return None
        size = len(json.dumps(visualization, allow_nan=False))
    except Exception as exc:
        logger.warning("%s: no visualization (%s: %s)", where, type(exc).__name__, exc)
        return None
    if size > MAX_VISUALIZATION_BYTES:
        logger.warning(
            "%s: visualization of %d bytes left out (at most %d)",
            where,
            size,
            MAX_VISUALIZATION_BYTES,
        )
        return None
    return visualization


def load_artifact(
    store: ArtifactStore,
    uri: str,
    materializer_name: str,
    data_type: str,
    content_hash: str | None = None,
    *,
    as_type: type | None = None,
) -> Any:
    """Load the value stored at ``uri`` (as ``as_type`` when the consuming step asks for a type
    its materializer converts to, e.g. a Spark DataFrame as pandas).

    Pickled data (which runs code when loaded) is loaded from a store not marked trusted only
    when its bytes match ``content_hash``, the hash the metadata store recorded when gristmill
    wrote them: what someone put in the bucket behind gristmill's back is refused.
    ``GRISTMILL_ALLOW_PICKLE=1`` (or a trusted store) skips the check.
    """
    materializer = materializer_named(materializer_name)()
    directory = store.local_directory(uri)
    if (
        not materializer.safe
        and not store.trusted
        and os.environ.get("GRISTMILL_ALLOW_PICKLE") != "1"
    ):
        actual = hash_directory(directory)[0]
        if content_hash is None or actual != content_hash:
            reason = (
                "its bytes do not match the content hash gristmill recorded for it"
                if content_hash is not None
                else "no recorded content hash vouches for it"
            )
            raise UnsafeArtifactError(
                f"refusing to unpickle the artifact at {uri} ({materializer_name}): the artifact store "
                f"{store.root} is not marked trusted and {reason}. If you trust it, set "
                "GRISTMILL_ALLOW_PICKLE=1 or mark the store trusted (trusted=true in its settings)"
            )
    try:
        if (
            as_type is not None
            and isinstance(materializer, LoadsAs)
            and materializer.loads_as(as_type)
        ):
            return materializer.load_as(directory, data_type, as_type)
        return materializer.load(directory, data_type)
    except (OSError, ValueError, TypeError, ImportError, AttributeError) as exc:
        raise MaterializerError(
            f"could not load the {data_type} at {uri} with materializer '{materializer_name}': {exc}"
        ) from exc


def _warn_pickle(data_type: type, where: str, materializer: str) -> None:
    name = data_type_name(data_type)
    if name not in _warned_pickle:
        _warned_pickle.add(name)
        logger.warning(
            "%s: no safe materializer for %s, storing it with %s, a pickle-based format (it "
            "loads only from trusted artifact stores); register a materializer for an open "
            "format",
            where,
            name,
            materializer,
        )
