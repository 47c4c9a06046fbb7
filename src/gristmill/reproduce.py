"""Going back to a past run: ``reproduce_run`` runs it again with the code and configuration it
recorded and compares every artifact's content hash; ``rerun`` runs one step and what depends
on it again, reusing the rest; ``diff_runs`` says what differs between two runs.

Restoring a run's code puts its source snapshot first on ``sys.path`` and forgets the user
modules this process had imported, so the steps come from the snapshot; afterwards both are
put back as they were. Either way the project root and the run's working directory (inside
the project) go on ``sys.path`` as during the run, so ``--code current`` imports
``pipeline:load`` from the project folder without PYTHONPATH.

A snapshot is verified before anything of it is written or imported: the manifest's BLAKE3
hash must be the one the run recorded, every path in it a relative ``.py`` path of a module
(no ``..``, nothing absolute) inside the restore folder, and every file's BLAKE3 digest the
one the manifest lists. Whoever can write the artifact bucket cannot make a reproduction run
other code than the run recorded (see docs/security.md).
"""

from __future__ import annotations

import dataclasses
import difflib
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from gristmill.client import Client, Run
from gristmill.errors import (
    ConfigError,
    NotFoundError,
    RunFailedError,
    did_you_mean,
)
from gristmill.execution import compile_run
from gristmill.execution.environment import (
    package_list,
    snapshot_manifest,
    source_file,
)
from gristmill.execution.run import RESOLVED_KEYS
from gristmill.execution.snapshot import restore_snapshot, verified_snapshot
from gristmill.options import RunConfig, StepOptions
from gristmill.pipelines import execute
from gristmill.project import make_importable, run_code_folders
from gristmill.store import Status

CODE_CHOICES = ("original", "current")


@dataclass
class ArtifactComparison:
    step: str
    output: str
    before: str | None
    after: str | None

    @property
    def same(self) -> bool:
        return self.before is not None and self.before == self.after

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "output": self.output,
            "before": self.before,
            "after": self.after,
            "same": self.same,
        }


@dataclass
class Reproduction:
    """A past run, its re-run, and whether every artifact came out byte-identical."""

    original: Run
    new: Run
    comparisons: list[ArtifactComparison]
    environment_changes: list[str] = field(default_factory=list)

    @property
    def matches(self) -> bool:
        return self.new.status in Status.SUCCEEDED and all(c.same for c in self.comparisons)

    def to_dict(self) -> dict[str, Any]:
        return {
            "original": self.original.id,
            "new": self.new.id,
            "new_status": self.new.status,
            "matches": self.matches,
            "artifacts": [c.to_dict() for c in self.comparisons],
            "environment_changes": self.environment_changes,
        }


def recorded_config(run: Run) -> RunConfig:
    return RunConfig.from_dict({k: v for k, v in run.config.items() if k not in RESOLVED_KEYS})


@contextmanager
def code_of(run: Run, code: str, client: Client) -> Iterator[None]:
    """Import step code as it was for ``run`` (``original``) or as it is now (``current``)."""
    if code not in CODE_CHOICES:
        raise ConfigError(f"--code must be one of {', '.join(CODE_CHOICES)}, not '{code}'")
    # As during the run: its working directory and the project root are importable (behind
    # the snapshot, for the original code), from whatever folder this is called.
    make_importable(run_code_folders(run.environment, client.project_root), first=True)
    if code == "current":
        yield
        return
    snapshot = run.environment.get("code", {}).get("snapshot")
    if not snapshot:
        raise ConfigError(
            f"run {run.name} recorded no code snapshot; use --code current to run today's code"
        )
    files = verified_snapshot(run.artifact_store, snapshot)
    folder = restore_snapshot(files, snapshot, client.project.directory / "snapshots")
    modules = {
        path.removesuffix(".py").removesuffix("/__init__").replace("/", ".") for path in files
    }
    saved_modules = {name: sys.modules.pop(name) for name in list(sys.modules) if name in modules}
    sys.path.insert(0, str(folder))
    try:
        yield
    finally:
        sys.path.remove(str(folder))
        for name in modules:
            sys.modules.pop(name, None)
        sys.modules.update(saved_modules)


def _pin_external_inputs(plan: Any, original: Run, client: Client) -> None:
    """Earlier artifacts the original run took as inputs are the versions it resolved then, not
    the latest ones now: reproducing means the same inputs."""
    from gristmill.execution.inputs import attach_external_inputs

    attach_external_inputs(plan, client.store, original.config.get("resolved_artifacts", {}))


def reproduce_run(
    ref: str, *, code: str = "original", cache: bool = False, client: Client | None = None
) -> Reproduction:
    """Run a past run again (without cache unless ``cache``) and compare content hashes."""
    client = client or Client()
    original = client.get_run(ref)
    recorded = recorded_config(original)
    config = dataclasses.replace(
        recorded,
        enable_cache=cache,
        run_name=None,
        tags=[*recorded.tags, f"reproduces:{original.id[:12]}"],
    )
    with code_of(original, code, client):
        plan = compile_run(original.spec, config)
        _pin_external_inputs(plan, original, client)
        new = _execute(plan)
    comparisons = []
    for step_id, step in original.steps.items():
        after = new.steps.get(step_id)
        for output, version in step.outputs.items():
            new_version = after.outputs.get(output) if after is not None else None
            comparisons.append(
                ArtifactComparison(
                    step_id,
                    output,
                    version.content_hash,
                    new_version.content_hash if new_version else None,
                )
            )
    return Reproduction(original, new, comparisons, _environment_changes(original, new))


def rerun(ref: str, *, start: str, code: str = "original", client: Client | None = None) -> Run:
    """Run step ``start`` of a past run, and every step downstream of it, again; the other
    steps link their outputs from the past run."""
    client = client or Client()
    original = client.get_run(ref)
    spec = original.spec
    if start not in {s.id for s in spec.steps}:
        raise NotFoundError(
            f"run {original.name} has no step '{start}'{did_you_mean(start, (s.id for s in spec.steps))}"
        )
    again = spec.downstream_of({start})
    recorded = recorded_config(original)
    config = dataclasses.replace(
        recorded, run_name=None, tags=[*recorded.tags, f"rerun-of:{original.id[:12]}"]
    )
    with code_of(original, code, client):
        plan = compile_run(spec, config)
        _pin_external_inputs(plan, original, client)
        for step_id, step_plan in plan.steps.items():
            if step_id in again:
                step_plan.options = step_plan.options.merged(StepOptions(cache=False))
                continue
            previous = original.steps.get(step_id)
            if previous is None or previous.status not in Status.SUCCEEDED:
                raise ConfigError(
                    f"step '{step_id}' did not succeed in run {original.name}, so its outputs cannot "
                    f"be reused: rerun from '{step_id}' (or an earlier step) instead"
                )
            step_plan.reuse_from = previous.id
        return _execute(plan)


def _execute(plan: Any) -> Run:
    try:
        return execute(plan)
    except RunFailedError as exc:
        if exc.run is None:
            raise
        return exc.run


def _environment_changes(before: Run, after: Run) -> list[str]:
    changes = []
    for key in ("python", "platform", "gristmill"):
        if before.environment.get(key) != after.environment.get(key):
            changes.append(f"{key}: {before.environment.get(key)} → {after.environment.get(key)}")
    packages = _package_changes(before, after)
    for name, (old, new) in sorted(packages.items()):
        changes.append(f"package {name}: {old or 'absent'} → {new or 'absent'}")
    return changes


def _packages_of(run: Run) -> dict[str, str]:
    digest = run.environment.get("packages", {}).get("hash")
    if not digest:
        return {}
    try:
        entries = package_list(run.artifact_store, digest)
    except Exception:  # an old or pruned store: no package list to compare
        return {}
    return dict(entry.split("==", 1) for entry in entries if "==" in entry)


def _package_changes(a: Run, b: Run) -> dict[str, tuple[str | None, str | None]]:
    before, after = _packages_of(a), _packages_of(b)
    return {
        name: (before.get(name), after.get(name))
        for name in set(before) | set(after)
        if before.get(name) != after.get(name)
    }


# -- diff -----------------------------------------------------------------------------------------


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict) and data:
        flat: dict[str, Any] = {}
        for key, value in data.items():
            flat.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    return {prefix: data}


def _changed(a: dict[str, Any], b: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    return {k: (a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}


def diff_runs(a_ref: str, b_ref: str, *, client: Client | None = None) -> dict[str, Any]:
    """What differs between two runs: parameters, configuration, code (with a unified diff of
    each changed source file), git, Python and packages, artifact content hashes, metrics."""
    client = client or Client()
    a, b = client.get_run(a_ref), client.get_run(b_ref)
    result: dict[str, Any] = {"a": {"id": a.id, "name": a.name}, "b": {"id": b.id, "name": b.name}}
    result["parameters"] = _changed(a.parameters, b.parameters)
    config_a = {k: v for k, v in a.config.items() if k not in RESOLVED_KEYS}
    config_b = {k: v for k, v in b.config.items() if k not in RESOLVED_KEYS}
    result["config"] = _changed(_flatten(config_a), _flatten(config_b))
    result["code"] = _code_diff(a, b)
    result["git"] = _changed(a.environment.get("git", {}), b.environment.get("git", {}))
    result["python"] = _changed(
        {k: a.environment.get(k) for k in ("python", "platform", "gristmill")},
        {k: b.environment.get(k) for k in ("python", "platform", "gristmill")},
    )
    result["packages"] = _package_changes(a, b)
    artifacts = []
    for step_id in sorted(set(a.steps) | set(b.steps)):
        outputs_a = a.steps[step_id].outputs if step_id in a.steps else {}
        outputs_b = b.steps[step_id].outputs if step_id in b.steps else {}
        for output in sorted(set(outputs_a) | set(outputs_b)):
            hash_a = outputs_a[output].content_hash if output in outputs_a else None
            hash_b = outputs_b[output].content_hash if output in outputs_b else None
            if hash_a != hash_b:
                artifacts.append({"step": step_id, "output": output, "a": hash_a, "b": hash_b})
    result["artifacts"] = artifacts
    result["metrics"] = _changed(a.metadata, b.metadata)
    result["same"] = (
        not any(result[k] for k in ("parameters", "config", "packages", "artifacts", "metrics"))
        and not result["code"]["changed"]
    )
    return result


def _code_diff(a: Run, b: Run) -> dict[str, Any]:
    snapshot_a = a.environment.get("code", {}).get("snapshot")
    snapshot_b = b.environment.get("code", {}).get("snapshot")
    info: dict[str, Any] = {
        "a": snapshot_a,
        "b": snapshot_b,
        "changed": snapshot_a != snapshot_b,
        "files": [],
    }
    if not info["changed"] or not snapshot_a or not snapshot_b:
        return info
    files_a = snapshot_manifest(a.artifact_store, snapshot_a)
    files_b = snapshot_manifest(b.artifact_store, snapshot_b)
    for path in sorted(set(files_a) | set(files_b)):
        digest_a, digest_b = files_a.get(path), files_b.get(path)
        if digest_a == digest_b:
            continue
        text_a = (
            source_file(a.artifact_store, digest_a).decode(errors="replace") if digest_a else ""
        )
        text_b = (
            source_file(b.artifact_store, digest_b).decode(errors="replace") if digest_b else ""
        )
        patch = "".join(
            difflib.unified_diff(
                text_a.splitlines(keepends=True),
                text_b.splitlines(keepends=True),
                fromfile=f"a/{path}",
                tofile=f"b/{path}",
            )
        )
        state = "added" if digest_a is None else "removed" if digest_b is None else "changed"
        info["files"].append({"path": path, "state": state, "diff": patch})
    return info
