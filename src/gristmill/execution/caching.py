"""The cache key of a step run (DESIGN.md §4, documented in docs/caching.md): a hash of

- the step's code hash (its own normalized source and the user code it reaches),
- its pinned ``version`` string, if any,
- its resolved parameter values,
- the content hashes of its input artifact versions, by argument name,
- the materializer (name@version) chosen for each declared output,
- its settings that can change results (all but infrastructure settings such as resources).

The pipeline, run, stack and orchestrator are not part of it: the same computation hits the
cache wherever it ran.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gristmill._hashing import hash_json


def cache_key(
    *,
    code_hash: str,
    version: str | None,
    parameters: Mapping[str, Any],
    input_hashes: Mapping[str, str],
    materializers: Mapping[str, str],
    settings: Mapping[str, Any],
) -> str:
    return hash_json(
        {
            "code": code_hash,
            "version": version,
            "parameters": dict(parameters),
            "inputs": dict(input_hashes),
            "outputs": dict(materializers),
            "settings": dict(settings),
        }
    )
