"""Built-in materializers and the registry that picks one (see ``base``)."""

from gristmill.artifacts.materializers.base import (
    CannotMaterialize,
    HashingFile,
    Materializer,
    candidates_for,
    materializer_key,
    materializer_named,
    registered,
)

__all__ = [
    "CannotMaterialize",
    "HashingFile",
    "Materializer",
    "candidates_for",
    "materializer_key",
    "materializer_named",
    "registered",
]
