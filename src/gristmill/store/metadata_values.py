"""What a metadata value may be, and its stored JSON form: checked where it is logged (in the
step) and again where it is written. No database, no SQLAlchemy: the launcher imports it."""

from __future__ import annotations

import json
from typing import Any

from gristmill.errors import InvalidMetadataError


def dumps(value: Any) -> str:
    """Canonical JSON text, as the store keeps JSON columns."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def metadata_value(key: str, value: Any) -> tuple[str, str]:
    """(JSON text, type name) of a metadata value; numpy scalars become Python numbers.
    InvalidMetadataError for an empty or non-string key or a value that is not JSON."""
    if not isinstance(key, str) or not key:
        raise InvalidMetadataError(f"metadata keys must be non-empty strings, got {key!r}")
    if hasattr(value, "item") and callable(value.item) and not isinstance(value, (list, dict)):
        try:
            value = value.item()
        except (TypeError, ValueError):
            pass
    if isinstance(value, bool):
        kind = "bool"
    elif isinstance(value, int):
        kind = "int"
    elif isinstance(value, float):
        kind = "float"
    elif isinstance(value, str):
        kind = "str"
    else:
        kind = "json"
    try:
        return dumps(value), kind
    except (TypeError, ValueError) as exc:
        raise InvalidMetadataError(
            f"metadata '{key}' = {type(value).__name__} is not JSON ({exc}); log numbers, "
            "strings, bools, lists or dicts of those"
        ) from None
