"""The read side: ``Client`` and the objects it returns (``Run``, ``StepRun``,
``ArtifactVersion``, ``Lineage``; ``RegisteredModel`` and ``ModelVersion`` from
``gristmill.models.registry``). A pipeline call returns the same ``Run`` object.

Objects load what they show lazily and cache it; ``Run.refresh()`` reads the run again.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gristmill.artifacts import ArtifactStore, LocalArtifactStore, load_artifact
from gristmill.errors import ArtifactStoreError, ConfigError, NotFoundError, did_you_mean
from gristmill.models.definition import (
    Model,
    ModelStages,
    check_model_name,
    is_new_version_name,
    version_ref,
)
from gristmill.models.registry import ModelVersion, RegisteredModel
from gristmill.project import (
    Project,
    check_store_exists,
    find_project,
    make_importable,
    run_code_folders,
    shared_store,
)
from gristmill.spec import PipelineSpec
from gristmill.stacks import Stack
from gristmill.store import (
    ArtifactVersionRecord,
    Entity,
    ExperimentRecord,
    LineageGraph,
    MetadataRecord,
    MetadataStore,
    PipelineRecord,
    RunDeletion,
    RunRecord,
    Status,
    StepRunRecord,
)
from gristmill.store.records import ArtifactVersionView

if TYPE_CHECKING:
    from gristmill.comparison import Comparison
    from gristmill.store import MetricPoint

logger = logging.getLogger("gristmill")


def _latest(entries: list[MetadataRecord]) -> dict[str, Any]:
    return {e.key: e.value for e in entries}


def _when(epoch: float | None) -> datetime | None:
    return datetime.fromtimestamp(epoch, timezone.utc) if epoch is not None else None


def _duration(start: float | None, end: float | None) -> float | None:
    if start is None:
        return None
    return (end if end is not None else time.time()) - start


def artifact_store_at(location: str) -> ArtifactStore:
    """An artifact store from its root: a local folder (or ``file://``), or a URL whose scheme
    an artifact store flavor serves (``s3://bucket/prefix``, ``gs://``, ``az://``)."""
    scheme, sep, _ = location.partition("://")
    if not sep or scheme == "file":
        return LocalArtifactStore(location)
    from gristmill._plugins import load_plugin, plugin_names

    for flavor in plugin_names("artifact_store"):
        cls = load_plugin("artifact_store", flavor)
        if scheme in getattr(cls, "scheme", ()):
            # Through the one path, so a missing extra names its pip command.
            from gristmill.stacks.flavors import instantiate

            store: ArtifactStore = instantiate("artifact_store", flavor, {"path": location})
            return store
    raise ConfigError(
        f"no artifact store flavor serves {scheme}:// URLs ({location}); pass an ArtifactStore"
    )


def _local_store_beside(url: str, uri: str) -> ArtifactStore | None:
    """With only a SQLite store URL, a run's in-project local artifacts are where
    ``gristmill init`` put them: ``artifacts/`` beside the database file."""
    if not url.startswith("sqlite:///"):
        return None
    store = LocalArtifactStore(str(Path(url.split("///", 1)[1]).parent / "artifacts"))
    return store if store.holds(uri) else None


class Client:
    """Reads runs, steps, artifacts, metadata and lineage from a metadata store and the
    artifact stores its runs wrote to. Reading never writes (see ``reap_dead_runs``).

    ``Client()`` uses the project found from the working directory (or GRISTMILL_PROJECT),
    ``Client(project=FOLDER)`` another one; outside a project, with no GRISTMILL_STORE_URL,
    both raise a ConfigError that says to run ``gristmill init``. A process with no project
    (a server) builds one from parts: ``Client(store=URL_OR_STORE, artifact_store=ROOT_OR_STORE)``;
    artifacts are then loaded from ``artifact_store`` when it holds their URI, else from the
    artifact store recorded in the run's stack.
    """

    def __init__(
        self,
        project: Project | str | Path | None = None,
        *,
        store: MetadataStore | str | None = None,
        artifact_store: ArtifactStore | str | Path | None = None,
    ) -> None:
        self._store = store if isinstance(store, MetadataStore) else None
        self._store_url = store if isinstance(store, str) else None
        if self._store_url is not None:
            check_store_exists(self._store_url, "Client(store=...)")
        self._artifact_store = (
            artifact_store
            if isinstance(artifact_store, ArtifactStore) or artifact_store is None
            else artifact_store_at(str(artifact_store))
        )
        self._project: Project | None = None
        if project is not None or store is None:  # from parts: no project folder at all
            if project is None:
                project = find_project()
            elif not isinstance(project, Project):
                project = Project(Path(project).expanduser().resolve())
            if store is None:
                project.check_readable()  # fail here, creating nothing, outside a project
            self._project = project

    @property
    def project(self) -> Project:
        """The project folder this client reads (a client built from parts has none)."""
        if self._project is None:
            raise ConfigError(
                "this Client was built from a store and has no project folder; "
                "pass project=... for what needs one"
            )
        return self._project

    @property
    def project_root(self) -> Path | None:
        """The project folder, or None for a client built from parts."""
        return self._project.root if self._project is not None else None

    @cached_property
    def store(self) -> MetadataStore:
        if self._store is not None:
            return self._store
        if self._store_url is not None:
            return shared_store(self._store_url)
        return self.project.store()

    def artifact_store_for(
        self, stack: dict[str, Any] | None = None, *, uri: str | None = None
    ) -> ArtifactStore:
        """The artifact store that holds ``uri`` (or serves a run on ``stack``): the one this
        client was given when it holds the URI, else the run's stack's (the active stack's
        when the stack is not known)."""
        given = self._artifact_store
        if given is not None and (uri is None or given.holds(uri)):
            return given
        if self._project is not None:
            found = self._project.artifact_store(Stack.from_dict(stack) if stack else None)
            if uri is not None and not found.holds(uri) and not self._project.exists:
                # No project here, only a store URL: the store holding a URI is chosen from
                # what the user gave, never from the URI a row holds.
                beside = _local_store_beside(self.store.url, uri)
                if beside is not None and isinstance(found, LocalArtifactStore):
                    return beside
            return found
        if stack:
            of_stack = self._stack_artifact_store(Stack.from_dict(stack))
            if of_stack is not None and (uri is None or of_stack.holds(uri)):
                return of_stack
        where = f"{uri} is" if uri else "the run's artifacts are"
        raise ConfigError(
            f"{where} not in an artifact store this client knows"
            + (f" (it was given {given.root})" if given is not None else "")
            + ": pass Client(artifact_store=...) the root that holds it"
        )

    def _stack_artifact_store(self, stack: Stack) -> ArtifactStore | None:
        """A stack's artifact store when its settings say where it is (a local store that
        lives in a project's .gristmill/ does not, and this client has no project)."""
        from gristmill.stacks.secrets import Secrets, references

        def resolve(config: Any, where: str) -> dict[str, Any]:
            if not references(config):
                return dict(config)
            if not os.environ.get("GRISTMILL_SECRETS_KEY"):
                raise ConfigError(
                    f"the settings of {where} refer to secrets: set GRISTMILL_SECRETS_KEY (a "
                    "Client built from parts has no project folder holding the key), or pass "
                    "Client(artifact_store=...)"
                )
            return Secrets(self.store, Path(os.devnull)).resolve(config, where=where)

        try:
            return stack.artifact_store(resolve=resolve)
        except ArtifactStoreError:
            return None

    def _store_holding(self, uri: str, run_id: str | None) -> ArtifactStore:
        """The artifact store that holds ``uri``, written by a step of run ``run_id``."""
        given = self._artifact_store
        if given is not None and given.holds(uri):
            return given
        stack = self.store.get_run(run_id).stack if run_id is not None else None
        return self.artifact_store_for(stack, uri=uri)

    def reap_dead_runs(self, *, stale_after: float | None = None) -> list[Run]:
        """Mark runs whose process died (gone from this host, or silent for ``stale_after``
        seconds, two minutes by default) as failed, and return them. Reads never do this;
        running a pipeline does it at start, ``gristmill runs reap`` on demand."""
        now = time.time()
        if stale_after is None:
            ids = self.store.reap_dead_runs(now)
        else:
            ids = self.store.reap_dead_runs(now, stale_after=stale_after)
        return [Run(self, self.store.get_run(run_id)) for run_id in ids]

    # -- runs -----------------------------------------------------------------------------------

    def get_run(self, ref: str = "latest") -> Run:
        """A run by id, unique id prefix or name; ``"latest"`` is the newest run."""
        if ref == "latest":
            runs = self.store.list_runs(limit=1)
            if not runs:
                raise NotFoundError("there are no runs yet: run a pipeline first")
            return Run(self, runs[0])
        return Run(self, self.store.get_run(ref))

    def list_runs(
        self,
        *,
        pipeline: str | None = None,
        status: str | None = None,
        limit: int = 50,
        offset: int = 0,
        experiment: str | None = None,
    ) -> list[Run]:
        """Runs, newest first; filter by pipeline name, status or experiment, page with
        limit/offset. A run whose process died shows as running until ``reap_dead_runs``
        marks it."""
        return [
            Run(self, r)
            for r in self.store.list_runs(
                pipeline=pipeline, status=status, limit=limit, offset=offset, experiment=experiment
            )
        ]

    def count_runs(
        self,
        *,
        pipeline: str | None = None,
        status: str | None = None,
        experiment: str | None = None,
    ) -> int:
        return self.store.count_runs(pipeline=pipeline, status=status, experiment=experiment)

    # -- experiments and metrics ----------------------------------------------------------------

    def list_experiments(self) -> list[ExperimentRecord]:
        """Every experiment (name, number of runs, first and last run), latest run first."""
        return self.store.list_experiments()

    def compare_runs(
        self,
        runs: Sequence[str | Run] = (),
        *,
        metrics: Sequence[str] | None = None,
        sort: str | None = None,
        experiment: str | None = None,
        last: int = 10,
    ) -> Any:
        """Runs side by side, one row per run: ``run``, ``id``, ``experiment``, ``status``,
        ``duration``, ``tags``, each parameter as ``params.NAME`` and each final metric as
        ``metrics.NAME`` (the last value of a series, or a number logged with log_metadata).
        A pandas DataFrame when pandas is installed, else a list of dicts.

        ``runs``: ids, names or Run objects; or ``experiment=NAME`` for its ``last`` runs
        (newest first). ``metrics`` keeps only those; ``sort`` orders by a metric, parameter
        or column, descending with a leading ``-`` (``sort="-accuracy"``)."""
        from gristmill.comparison import as_frame

        found = self.comparison(runs, metrics=metrics, sort=sort, experiment=experiment, last=last)
        return as_frame(found.rows, found.columns)

    def comparison(
        self,
        runs: Sequence[str | Run] = (),
        *,
        metrics: Sequence[str] | None = None,
        sort: str | None = None,
        experiment: str | None = None,
        last: int = 10,
    ) -> Comparison:
        """What ``compare_runs`` shows, as a ``Comparison`` (its columns and rows)."""
        from gristmill.comparison import compare

        chosen = [r if isinstance(r, Run) else self.get_run(r) for r in runs]
        if experiment is not None:
            chosen += self.list_runs(experiment=experiment, limit=last)
            if not chosen:
                names = [e.name for e in self.list_experiments()]
                raise NotFoundError(
                    f"no runs in experiment '{experiment}'{did_you_mean(experiment, names)}"
                )
        if not chosen:
            raise ConfigError("compare which runs? give run ids or names, or an experiment")
        unique = list({r.id: r for r in chosen}.values())
        return compare(self.store, unique, metrics=metrics, sort=sort)

    def metric_history(self, run: str | Run, name: str) -> Any:
        """Every value of metric ``name`` logged in a run, by step: a pandas DataFrame with
        ``step``, ``value`` and ``time`` (UTC) when pandas is installed, else a list of dicts.
        A cached step's series is the one the step run it reused logged."""
        from gristmill.comparison import as_frame, history_rows

        found = run if isinstance(run, Run) else self.get_run(run)
        return as_frame(history_rows(found._metric_points(name)), ("step", "value", "time"))

    def delete_run(self, ref: str, *, force: bool = False) -> RunDeletion:
        """Delete a run (id, id prefix, name or ``"latest"``): see ``delete_runs``."""
        return self.delete_runs([ref], force=force)

    def delete_runs(
        self, refs: list[str] | tuple[str, ...], *, force: bool = False, dry_run: bool = False
    ) -> RunDeletion:
        """Delete runs, their step runs, lineage edges, metadata and log records, and the
        artifact versions that only they produced and no other run used, in one transaction.
        The artifacts' bytes stay in the artifact store (content-addressed, maybe shared).

        Refused (StoreError, nothing deleted) for a run still running unless ``force``, and
        for a run whose artifact versions other runs used as inputs (the error names them:
        delete those first, or in the same call). ``dry_run`` reports what would go."""
        ids = list(dict.fromkeys(self.get_run(ref).id for ref in refs))
        return self.store.delete_runs(ids, force=force, dry_run=dry_run)

    # -- pipelines ------------------------------------------------------------------------------

    def list_pipelines(self) -> list[PipelineInfo]:
        return [PipelineInfo(self, p) for p in self.store.list_pipelines()]

    def get_pipeline(self, name: str) -> PipelineInfo:
        return PipelineInfo(self, self.store.get_pipeline(name))

    # -- artifacts ------------------------------------------------------------------------------

    def get_artifact_version(self, ref: str, version: int | None = None) -> ArtifactVersion:
        """By id (or unique prefix), ``NAME`` (latest version) or ``NAME:VERSION``; or by name
        and number: ``get_artifact_version("model", 3)``."""
        if version is not None:
            if isinstance(version, bool) or not isinstance(version, int) or version < 1:
                raise ValueError(
                    f"version must be a version number (1, 2, ...), not {version!r}; "
                    f"get_artifact_version({ref!r}) gives the latest"
                )
            ref = f"{ref}:{version}"
        return ArtifactVersion(self, self.store.get_artifact_version(ref))

    def list_artifact_versions(
        self,
        *,
        name: str | None = None,
        run: str | None = None,
        content_hash: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[ArtifactVersion]:
        """Newest first: all of them, one artifact's (``name``), one run's outputs (``run``),
        or the versions that hold the same bytes (``content_hash``)."""
        run_id = self.get_run(run).id if run is not None else None
        records = self.store.list_artifact_versions(
            name=name, run_id=run_id, content_hash=content_hash, limit=limit, offset=offset
        )
        return [ArtifactVersion(self, r) for r in records]

    def lineage(self, ref: str, *, direction: str = "upstream") -> Lineage:
        """The artifact versions upstream (what it was made from) or downstream (what was made
        from it) of one artifact version, with the step runs in between."""
        version = self.store.get_artifact_version(ref)
        return Lineage(self, self.store.lineage(version.id, direction=direction), direction)

    def upstream(self, ref: str) -> list[ArtifactVersion]:
        return self.lineage(ref, direction="upstream").others()

    def downstream(self, ref: str) -> list[ArtifactVersion]:
        return self.lineage(ref, direction="downstream").others()

    # -- models ---------------------------------------------------------------------------------

    def get_model(self, name: str) -> RegisteredModel:
        """A model of the registry by name (NotFoundError with the closest names)."""
        return RegisteredModel(self, self.store.get_model(name))

    def list_models(self) -> list[RegisteredModel]:
        return [RegisteredModel(self, m) for m in self.store.list_models()]

    def get_model_version(
        self, name: str, version: str | int | None = ModelStages.LATEST
    ) -> ModelVersion:
        """A version of model ``name``: a stage (``"production"``, ``"staging"``,
        ``"archived"``), ``"latest"`` (also None), a number (``3`` or ``"3"``), a version name
        (``"rf"``) or an id."""
        ref = ModelStages.LATEST if version is None else version
        return ModelVersion(self, self.store.get_model_version(name, ref))

    def create_model(
        self,
        name: str,
        *,
        description: str | None = None,
        license: str | None = None,
        tags: list[str] | None = None,
        **details: str,
    ) -> RegisteredModel:
        """Register a model (or update the fields given of an existing one); ``details``:
        audience, use_cases, limitations, trade_offs, ethics."""
        model = Model(
            name=name, description=description, license=license, tags=tags or [], **details
        )
        record = self.store.save_model(
            model.name,
            description=model.description,
            license=model.license,
            tags=model.tags,
            details=model.details,
            at=time.time(),
        )
        return RegisteredModel(self, record)

    def create_model_version(
        self,
        name: str,
        *,
        artifacts: dict[str, str] | None = None,
        version: str | None = None,
        description: str | None = None,
        tags: list[str] | None = None,
    ) -> ModelVersion:
        """A new version of model ``name`` (created if new), named ``version`` if given, made
        of existing artifact versions: ``{"clf:3": "model", "features:2": "data"}`` (id,
        ``NAME`` or ``NAME:VERSION`` → model, data or deployment)."""
        check_model_name(name)
        if version is not None and not is_new_version_name(version_ref(version) or ""):
            raise ValueError(
                f"version {version!r} is a number, a stage or 'latest': a registered version "
                "gets the next number; give a name such as 'rf' (or none)"
            )
        links = {
            self.store.get_artifact_version(ref).id: kind for ref, kind in (artifacts or {}).items()
        }
        now = time.time()
        self.store.save_model(name, at=now)
        record = self.store.create_model_version(
            name, name=version, description=description, tags=tags or [], at=now
        )
        self.store.link_model_artifacts(record.id, links, at=now)
        return ModelVersion(self, record)

    def delete_model_version(
        self, name: str, version: str | int, *, force: bool = False
    ) -> ModelVersion:
        """Delete a version (refused for one in production unless ``force``)."""
        found = self.get_model_version(name, version)
        found.delete(force=force)
        return found

    def delete_model(self, name: str, *, force: bool = False) -> list[ModelVersion]:
        """Delete a model with all its versions (refused while one is in production unless
        ``force``); returns the deleted versions."""
        return [ModelVersion(self, r) for r in self.store.delete_model(name, force=force)]

    # -- logs -----------------------------------------------------------------------------------

    def get_step_logs(self, run: str, step: str) -> str:
        return self.get_run(run).step(step).logs()


# Why steps a stop request ended are stopped (their stored reason).
STOP_REQUESTED = "stopped by a stop request (gristmill runs stop)"
# How often ``Run.wait`` reads the run, and marks dead runs failed, while it waits.
WAIT_POLL_SECONDS = 1.0
REAP_WHILE_WAITING_SECONDS = 30.0
# How long ``Run.stop`` gives the run's workers to stop its running steps themselves.
STOP_GRACE_SECONDS = 30.0


class Run:
    """One execution of a pipeline."""

    def __init__(self, client: Client, record: RunRecord) -> None:
        self._client = client
        self._record = record
        self._steps: dict[str, StepRun] | None = None
        self._metadata: dict[str, Any] | None = None

    def __repr__(self) -> str:
        return f"<Run {self.name} {self.status}>"

    @property
    def id(self) -> str:
        return self._record.id

    @property
    def name(self) -> str:
        return self._record.name

    @property
    def pipeline_name(self) -> str:
        return self._record.pipeline_name

    @property
    def status(self) -> str:
        return self._record.status

    @property
    def error(self) -> str | None:
        return self._record.error

    @property
    def created_at(self) -> datetime:
        created = _when(self._record.created_at)
        assert created is not None
        return created

    @property
    def started_at(self) -> datetime | None:
        return _when(self._record.started_at)

    @property
    def ended_at(self) -> datetime | None:
        return _when(self._record.ended_at)

    @property
    def duration(self) -> float | None:
        """Seconds from start to end (to now while running)."""
        return _duration(self._record.started_at, self._record.ended_at)

    @property
    def parameters(self) -> dict[str, Any]:
        return dict(self._record.config.get("resolved_parameters", {}))

    @property
    def config(self) -> dict[str, Any]:
        return dict(self._record.config)

    @property
    def environment(self) -> dict[str, Any]:
        return dict(self._record.environment)

    @property
    def stack(self) -> dict[str, Any]:
        return dict(self._record.stack)

    @property
    def orchestrator(self) -> str | None:
        return self._record.orchestrator

    @property
    def tags(self) -> list[str]:
        return list(self._record.tags)

    @property
    def experiment(self) -> str:
        """The experiment the run is grouped in (its pipeline's name unless chosen)."""
        return self._record.experiment or self._record.pipeline_name

    @property
    def metrics(self) -> dict[str, float]:
        """The final value of each metric: the last value of every series ``log_metric``
        logged, and every number ``log_metadata`` logged on the run."""
        from gristmill.comparison import final_metrics

        return final_metrics(self._client.store.get_metadata(Entity.RUN, [self.id])[self.id])

    def metric_history(self, name: str) -> Any:
        """Every value of metric ``name`` by step (``Client.metric_history``)."""
        return self._client.metric_history(self, name)

    def _metric_points(self, name: str) -> list[MetricPoint]:
        store = self._client.store
        points = store.metric_history(self.id, name)
        if not points:  # cache hits: the series of the step runs they reused
            for step in self.steps.values():
                if step.cached_from:
                    source = store.get_step_run(step.cached_from)
                    points += store.metric_history(source.run_id, name, step_run_id=source.id)
        if not points:
            names = store.metric_names([self.id])[self.id]
            raise NotFoundError(
                f"run {self.name} has no series '{name}'{did_you_mean(name, names)}"
                + (f" (its series: {', '.join(names)})" if names else "")
                + "; series are what log_metric() records, log_metadata() keeps one value"
            )
        return points

    @property
    def spec(self) -> PipelineSpec:
        return PipelineSpec.from_json(
            self._client.store.get_pipeline_spec(self._record.pipeline_version_id)
        )

    @property
    def spec_hash(self) -> str | None:
        return self._record.spec_hash

    @property
    def steps(self) -> dict[str, StepRun]:
        """Step runs by step id, in execution order."""
        if self._steps is None:
            store = self._client.store
            records = store.get_step_runs(self.id)
            io = store.get_step_run_io([r.id for r in records])
            metadata = store.get_metadata(Entity.STEP_RUN, [r.id for r in records])
            self._steps = {
                r.name: StepRun(self._client, r, self, io[r.id], _latest(metadata[r.id]))
                for r in records
            }
        return self._steps

    def step(self, name: str) -> StepRun:
        steps = self.steps
        if name not in steps:
            raise NotFoundError(f"run {self.name} has no step '{name}'{did_you_mean(name, steps)}")
        return steps[name]

    @property
    def metadata(self) -> dict[str, Any]:
        """The latest value of each metadata key logged on the run."""
        if self._metadata is None:
            self._metadata = _latest(
                self._client.store.get_metadata(Entity.RUN, [self.id])[self.id]
            )
        return self._metadata

    def metadata_history(self, key: str) -> list[Any]:
        """Every value logged under ``key`` on this run, oldest first (e.g. a metric per epoch)."""
        return [
            e.value
            for e in self._client.store.get_metadata(Entity.RUN, [self.id])[self.id]
            if e.key == key
        ]

    @property
    def artifact_store(self) -> ArtifactStore:
        return self._client.artifact_store_for(self._record.stack)

    def refresh(self) -> Run:
        return self._reset(self._client.store.get_run(self.id))

    def _reset(self, record: RunRecord) -> Run:
        self._record = record
        self._steps = None
        self._metadata = None
        return self

    def wait(self, timeout: float | None = None, poll: float = WAIT_POLL_SECONDS) -> Run:
        """Follow the run from the store until it ends (completed, failed or stopped) and
        return it, refreshed: for a run handed to an engine (``submitted``), or one running in
        another process. Reads the run every ``poll`` seconds, and marks dead runs failed
        every ``REAP_WHILE_WAITING_SECONDS`` (as ``gristmill runs reap`` does), so a run
        whose workers died ends too. RunTimeoutError after ``timeout`` seconds (the run goes
        on); Ctrl-C stops waiting, not the run (``gristmill runs wait`` stops it)."""
        return self._reset(wait_for_run(self._client.store, self.id, timeout=timeout, poll=poll))

    def stop(self, grace: float = STOP_GRACE_SECONDS) -> Run:
        """Stop the run and return it, refreshed. The stop is recorded in the store (the run
        is ``stopping``): the process running a blocking run sees it within a second and ends
        the run ``stopped`` as Ctrl-C would; a run handed to an engine is also stopped on the
        engine where the engine can (Dask: its tasks are cancelled), its workers stop their
        running steps, and after at most ``grace`` seconds the steps still pending or running
        are recorded ``stopped`` with the run. A run that already ended is returned as is.
        RunTimeoutError when a blocking run's process has not ended it after ``grace``."""
        engine = None
        stack = self._record.stack
        if self._record.pid is None and stack.get("components", {}).get("orchestrator"):
            engine = self._engine_stop(Stack.from_dict(stack))
        return self._reset(stop_run(self._client.store, self.id, engine=engine, grace=grace))

    def _engine_stop(self, stack: Stack) -> Any:
        """The ``stop`` of the run's orchestrator, built from the recorded stack (its
        secrets resolved by the project, when there is one)."""
        project = self._client._project
        resolve = project.resolve if project is not None else None
        try:
            return stack.orchestrator(resolve=resolve).stop
        except Exception as exc:  # e.g. the flavor's extra missing here: stop through the store
            logger.warning(
                "run %s: cannot build its orchestrator to stop it on the engine (%s: %s); "
                "its workers stop it at their next check of the store",
                self.name,
                type(exc).__name__,
                exc,
            )
            return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "pipeline": self.pipeline_name,
            "status": self.status,
            "created_at": self.created_at.isoformat(),
            "duration": self.duration,
            "parameters": self.parameters,
            "stack": self._record.stack.get("name"),
            "orchestrator": self.orchestrator,
            "tags": self.tags,
            "experiment": self.experiment,
            "error": self.error,
        }


def wait_for_run(
    store: MetadataStore,
    run_id: str,
    *,
    timeout: float | None = None,
    poll: float = WAIT_POLL_SECONDS,
    on_read: Callable[[RunRecord], None] | None = None,
) -> RunRecord:
    """The run's record once it has ended (``Run.wait``); RunTimeoutError after ``timeout``.
    ``on_read`` sees the record each time it is read (the CLI shows progress with it)."""
    from gristmill.errors import RunTimeoutError

    started = time.monotonic()
    reaped = started
    while True:
        record = store.get_run(run_id)
        if on_read is not None:
            on_read(record)
        if record.status in Status.FINISHED:
            return record
        now = time.monotonic()
        if timeout is not None and now - started >= timeout:
            raise RunTimeoutError(
                f"run {record.name} is still {record.status} after {timeout:g}s: wait longer "
                f"(`gristmill runs wait {record.name}`), or stop it "
                f"(`gristmill runs stop {record.name}`)",
                Run(Client(store=store), record),
            )
        if now - reaped >= REAP_WHILE_WAITING_SECONDS:
            reaped = now
            store.reap_dead_runs(time.time())
            continue
        pause = poll if timeout is None else min(poll, max(timeout - (now - started), 0.0))
        time.sleep(max(pause, 0.01))


def stop_run(
    store: MetadataStore,
    run_id: str,
    *,
    engine: Any = None,
    grace: float = STOP_GRACE_SECONDS,
    poll: float = 0.25,
) -> RunRecord:
    """Stop a run (``Run.stop``): record the request, tell the engine (``engine(record,
    steps=STEP_IDS)``, for a run handed over), and end the run. Returns the run's record
    once it has ended."""
    from gristmill.errors import RunTimeoutError

    status = store.request_stop(run_id, at=time.time())
    record = store.get_run(run_id)
    if status in Status.FINISHED:
        return record
    handed_over = record.pid is None
    if handed_over and engine is not None:
        try:
            engine(record, steps=[s.name for s in store.get_step_runs(run_id)])
        except Exception as exc:
            logger.warning(
                "run %s: could not stop it on its engine (%s: %s); its workers stop it at their "
                "next check of the store",
                record.name,
                type(exc).__name__,
                exc,
            )
    deadline = time.monotonic() + grace
    while True:
        record = store.get_run(run_id)
        if record.status in Status.FINISHED:
            return record
        if handed_over and not any(s.status == Status.RUNNING for s in store.get_step_runs(run_id)):
            break  # nothing runs on the workers any more: end it here
        if time.monotonic() >= deadline:
            if handed_over:
                break
            raise RunTimeoutError(
                f"run {record.name} is still {record.status} {grace:g}s after the stop request: "
                f"the process running it (pid {record.pid} on {record.host}) ends it when it "
                f"next reads the store; if that process is gone, `gristmill runs reap` marks "
                f"the run failed",
                Run(Client(store=store), record),
            )
        time.sleep(poll)
    # Handed over, and nothing of it runs any more (or its workers did not confirm within
    # the grace): what has not ended ends here, stopped, with the run.
    now = time.time()
    active = [s.name for s in store.get_step_runs(run_id) if s.status in Status.ACTIVE]
    store.stop_step_runs(run_id, active, reason=STOP_REQUESTED, at=now)
    record = store.get_run(run_id)
    if record.status not in Status.FINISHED:  # its engine's `finish` may have come first
        store.finish_run(run_id, status=Status.STOPPED, ended_at=now, error=None)
    return store.get_run(run_id)


class StepRun:
    """One execution (or cache hit) of one step in a run."""

    def __init__(
        self,
        client: Client,
        record: StepRunRecord,
        run: Run | None,
        io: tuple[dict[str, ArtifactVersionRecord], dict[str, ArtifactVersionRecord]] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self._client = client
        self._record = record
        self._run = run
        self._io = io
        self._metadata = metadata

    def __repr__(self) -> str:
        return f"<StepRun {self.name} {self.status}>"

    @property
    def id(self) -> str:
        return self._record.id

    @property
    def name(self) -> str:
        return self._record.name

    @property
    def source(self) -> str:
        return self._record.source

    @property
    def status(self) -> str:
        return self._record.status

    @property
    def cache_key(self) -> str | None:
        return self._record.cache_key

    @property
    def code_hash(self) -> str | None:
        return self._record.code_hash

    @property
    def cached_from(self) -> str | None:
        """The step run whose outputs a cache hit reused."""
        return self._record.cached_from

    @property
    def parameters(self) -> dict[str, Any]:
        return dict(self._record.parameters)

    @property
    def attempts(self) -> int:
        return self._record.attempts

    @property
    def error(self) -> str | None:
        return self._record.error

    @property
    def started_at(self) -> datetime | None:
        return _when(self._record.started_at)

    @property
    def ended_at(self) -> datetime | None:
        return _when(self._record.ended_at)

    @property
    def duration(self) -> float | None:
        return (
            _duration(self._record.started_at, self._record.ended_at)
            if self._record.ended_at
            else None
        )

    @property
    def run(self) -> Run:
        if self._run is None:
            self._run = Run(self._client, self._client.store.get_run(self._record.run_id))
        return self._run

    def _load_io(self) -> tuple[dict[str, ArtifactVersionRecord], dict[str, ArtifactVersionRecord]]:
        if self._io is None:
            self._io = self._client.store.get_step_run_io([self.id])[self.id]
        return self._io

    @property
    def inputs(self) -> dict[str, ArtifactVersion]:
        return {k: ArtifactVersion(self._client, v) for k, v in self._load_io()[0].items()}

    @property
    def outputs(self) -> dict[str, ArtifactVersion]:
        return {k: ArtifactVersion(self._client, v) for k, v in self._load_io()[1].items()}

    def output(self, name: str | None = None) -> ArtifactVersion:
        """One output (the only one when ``name`` is omitted)."""
        outputs = self.outputs
        if name is None:
            if len(outputs) != 1:
                raise NotFoundError(
                    f"step '{self.name}' has {len(outputs)} outputs ({', '.join(outputs) or 'none'}); name one"
                )
            return next(iter(outputs.values()))
        if name not in outputs:
            raise NotFoundError(
                f"step '{self.name}' has no output '{name}'{did_you_mean(name, outputs)}"
            )
        return outputs[name]

    @property
    def metadata(self) -> dict[str, Any]:
        if self._metadata is None:
            self._metadata = _latest(
                self._client.store.get_metadata(Entity.STEP_RUN, [self.id])[self.id]
            )
        return self._metadata

    def logs(self) -> str:
        """What the step printed and logged ('' when it printed nothing or logs were off)."""
        uri = self._client.store.get_logs_uri(self.id)
        if uri is None and self.cached_from:
            uri = self._client.store.get_logs_uri(self.cached_from)
        if uri is None:
            return ""
        return self._client.artifact_store_for(self.run.stack, uri=uri).read_text(uri)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "status": self.status,
            "source": self.source,
            "duration": self.duration,
            "attempts": self.attempts,
            "cached_from": self.cached_from,
            "parameters": self.parameters,
            "metadata": self.metadata,
            "outputs": {k: v.id for k, v in self.outputs.items()},
            "inputs": {k: v.id for k, v in self.inputs.items()},
            "error": self.error,
        }


class ArtifactVersion(ArtifactVersionView):
    """One output of one step run: an immutable version of an artifact, numbered per name.
    Its bytes are stored once by content hash and shared with every version holding the same
    content (``same_content()``). Pass it to a step in a pipeline's body to use it as an input."""

    def __init__(self, client: Client, record: ArtifactVersionRecord) -> None:
        self._client = client
        self._record = record
        self._metadata: dict[str, Any] | None = None

    def __repr__(self) -> str:
        return f"<ArtifactVersion {self.name}:{self.version} {self.data_type}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ArtifactVersion) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    @property
    def preview(self) -> str | None:
        return self._record.preview

    @property
    def created_at(self) -> datetime:
        created = _when(self._record.created_at)
        assert created is not None
        return created

    @property
    def run_id(self) -> str | None:
        """The run whose step run produced this version."""
        return self._record.run_id

    @property
    def producer(self) -> StepRun | None:
        """The step run that produced this version (not the cache hits that reused it)."""
        if self._record.producer_step_run_id is None:
            return None
        return StepRun(
            self._client, self._client.store.get_step_run(self._record.producer_step_run_id), None
        )

    @property
    def metadata(self) -> dict[str, Any]:
        if self._metadata is None:
            entries = self._client.store.get_metadata(Entity.ARTIFACT_VERSION, [self.id])[self.id]
            self._metadata = _latest(entries)
        return self._metadata

    def load(self) -> Any:
        """The value, read back with the materializer that stored it. Pickled values may
        name classes of the project's own modules: the project root and the producing run's
        working directory are importable for them (at the end of ``sys.path``), from
        whatever folder this is called."""
        store = self._client._store_holding(self.uri, self._record.run_id)
        if "pickle" in self.materializer and self._record.run_id is not None:
            run = self._client.store.get_run(self._record.run_id)
            make_importable(
                run_code_folders(run.environment, self._client.project_root), first=False
            )
        return load_artifact(store, self.uri, self.materializer, self.data_type, self.content_hash)

    def local_directory(self) -> Path:
        """A local folder holding the stored files (downloaded once from a remote store)."""
        store = self._client._store_holding(self.uri, self._record.run_id)
        return store.local_directory(self.uri)

    def same_content(self) -> list[ArtifactVersion]:
        """The other versions holding the same bytes (of this artifact or another), newest
        first: a re-run that computed the same thing, without the cache."""
        return [
            ArtifactVersion(self._client, r)
            for r in self._client.store.list_artifact_versions(
                content_hash=self.content_hash, limit=1000
            )
            if r.id != self.id
        ]

    def upstream(self) -> list[ArtifactVersion]:
        return self._client.upstream(self.id)

    def downstream(self) -> list[ArtifactVersion]:
        return self._client.downstream(self.id)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "version": self.version,
            "uri": self.uri,
            "content_hash": self.content_hash,
            "materializer": self.materializer,
            "data_type": self.data_type,
            "size": self.size,
            "preview": self.preview,
            "created_at": self.created_at.isoformat(),
            "run_id": self.run_id,
            "producer_step_run_id": self._record.producer_step_run_id,
            "metadata": self.metadata,
        }


@dataclass
class Lineage:
    """Artifact versions linked to one, through the step runs between them."""

    client: Client
    graph: LineageGraph
    direction: str

    @property
    def root(self) -> ArtifactVersion:
        return ArtifactVersion(self.client, self.graph.artifact_versions[self.graph.root])

    def others(self) -> list[ArtifactVersion]:
        """Every linked version except the root, nearest first where the graph allows."""
        order = self._walk()
        return [
            ArtifactVersion(self.client, self.graph.artifact_versions[i])
            for i in order
            if i != self.graph.root
        ]

    def _walk(self) -> list[str]:
        seen = [self.graph.root]
        frontier = [self.graph.root]
        while frontier:
            nxt = []
            for node in frontier:
                for a, _, b in self.graph.edges:
                    near, far = (b, a) if self.direction == "upstream" else (a, b)
                    if near == node and far not in seen:
                        seen.append(far)
                        nxt.append(far)
            frontier = nxt
        return seen

    def to_dict(self) -> dict[str, Any]:
        return {
            "root": self.graph.root,
            "direction": self.direction,
            "artifact_versions": {
                k: ArtifactVersion(self.client, v).to_dict()
                for k, v in self.graph.artifact_versions.items()
            },
            "step_runs": {
                k: {"name": v.name, "run_id": v.run_id, "status": v.status}
                for k, v in self.graph.step_runs.items()
            },
            "edges": [{"input": a, "step_run": s, "output": b} for a, s, b in self.graph.edges],
        }


class PipelineInfo:
    """A pipeline as recorded in the store: its versions and runs."""

    def __init__(self, client: Client, record: PipelineRecord) -> None:
        self._client = client
        self._record = record

    def __repr__(self) -> str:
        return f"<Pipeline {self.name}: {self.run_count} runs>"

    @property
    def name(self) -> str:
        return self._record.name

    @property
    def version_count(self) -> int:
        return self._record.version_count

    @property
    def run_count(self) -> int:
        return self._record.run_count

    @property
    def latest_spec_hash(self) -> str | None:
        return self._record.latest_spec_hash

    def runs(self, *, limit: int = 50, offset: int = 0) -> list[Run]:
        return self._client.list_runs(pipeline=self.name, limit=limit, offset=offset)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "versions": self.version_count,
            "runs": self.run_count,
            "latest_spec_hash": self.latest_spec_hash,
        }
