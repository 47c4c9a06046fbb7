"""``gristmill run``: load a pipeline, compile it with the given parameters, run it with live
progress, print what it produced. Exit status 0 only when the run succeeded (1 when it
failed, 130 when interrupted with Ctrl-C)."""

from __future__ import annotations

import contextlib
import importlib
import json
import sys
from pathlib import Path
from typing import Any

import click

from gristmill.cli._output import console, escape, handles_errors, print_json, status_text
from gristmill.errors import ConfigError, ParameterError, RunFailedError
from gristmill.execution import RunListener


def load_target(target: str) -> Any:
    """The pipeline named by ``module:name``, ``path/file.py:name`` or ``pipeline.yaml`` (the
    working directory is importable, as with ``python -m``)."""
    from gristmill.pipelines import Pipeline
    from gristmill.yaml_pipelines import is_pipeline_file, load_pipeline

    if str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    if is_pipeline_file(target):
        return load_pipeline(target)
    location, sep, name = target.rpartition(":")
    if not sep or not location or not name:
        raise ConfigError(
            f"'{target}' is not a pipeline reference: use MODULE:PIPELINE (e.g. "
            "myproject.pipelines:training), FILE.py:PIPELINE or a pipeline.yaml"
        )
    if location.endswith(".py"):
        path = Path(location).resolve()
        if not path.exists():
            raise ConfigError(f"{location}: no such file")
        module_name = path.stem
        sys.path.insert(0, str(path.parent))
    else:
        module_name = location
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise ConfigError(
                f"cannot import module '{module_name}' for {target}: run gristmill from the "
                "folder that contains it, or use FILE.py:PIPELINE"
            ) from None
        raise
    obj = getattr(module, name, None)
    if not isinstance(obj, Pipeline):
        from gristmill.errors import did_you_mean

        found = [k for k, v in vars(module).items() if isinstance(v, Pipeline)]
        hint = did_you_mean(name, found) if found else f" ({module_name} defines no @pipeline)"
        what = "is not a @pipeline" if obj is not None else "does not exist"
        raise ConfigError(f"{target}: '{name}' {what}{hint}")
    return obj


def parse_parameters(pairs: tuple[str, ...], declared: dict[str, Any]) -> dict[str, Any]:
    """``key=value`` pairs; values are JSON where that parses, else strings (always strings
    for parameters declared ``str``)."""
    result: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise ParameterError(f"-p {pair!r}: expected KEY=VALUE, e.g. -p lr=0.2")
        declared_type = getattr(declared.get(key), "type", "any")
        if declared_type == "str":
            result[key] = raw
            continue
        try:
            result[key] = json.loads(raw)
        except ValueError:
            result[key] = raw
    return result


class _Progress(RunListener):
    """Live step progress for a terminal; one line per finished step otherwise."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.enabled = enabled
        self.done = 0
        self.total = total
        self._progress: Any = None
        self._task: Any = None
        if enabled and console(stderr=True).is_terminal:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console(stderr=True),
                transient=True,
            )
            self._task = self._progress.add_task("running", total=total)

    def __enter__(self) -> _Progress:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def step_started(self, *, step_id: str, **future: Any) -> None:
        if self._progress is not None:
            self._progress.update(self._task, description=f"running {escape(step_id)}")

    def step_finished(self, *, step_id: str, status: str, **future: Any) -> None:
        self.done += 1
        if self._progress is not None:
            self._progress.advance(self._task)
        if self.enabled:
            console(stderr=True).print(f"  {status_text(status):<22} {escape(step_id)}")


@click.command()
@click.argument("target")
@click.option(
    "-p",
    "--param",
    "params",
    multiple=True,
    metavar="KEY=VALUE",
    help="Pipeline parameter (repeatable); overrides the configuration file.",
)
@click.option(
    "-c",
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    help="Run configuration file: parameters, per-step settings, run name, tags.",
)
@click.option("--stack", "stack_name", help="Run on this stack instead of the active one.")
@click.option("--no-cache", is_flag=True, help="Run every step, ignoring cached results.")
@click.option("--orchestrator", help="Orchestrator flavor for this run (local, local_parallel).")
@click.option("--max-workers", type=int, help="Parallel steps for local_parallel.")
@click.option("--run-name", help="Run name or template ({pipeline}, {date}, {time}, {id}).")
@click.option("--tag", "tags", multiple=True, help="Tag for the run (repeatable).")
@click.option("--experiment", help="Experiment to group the run in (default: the pipeline's name).")
@click.option("--json", "as_json", is_flag=True, help="Print the run as JSON when done.")
@handles_errors
def run(
    target: str,
    params: tuple[str, ...],
    config_path: str | None,
    stack_name: str | None,
    no_cache: bool,
    orchestrator: str | None,
    max_workers: int | None,
    run_name: str | None,
    tags: tuple[str, ...],
    experiment: str | None,
    as_json: bool,
) -> None:
    """Run the pipeline TARGET (MODULE:PIPELINE, FILE.py:PIPELINE or pipeline.yaml) on the
    active stack. Precedence: -p values, then the other flags, then the -c file, then what the
    pipeline declares.

    \b
    Examples:
      gristmill run pipeline:training -p lr=0.2
      gristmill run pipeline.yaml -c nightly.yaml
      gristmill run myproject.pipelines:training --orchestrator local_parallel
    """
    from gristmill.cli.runs import render_run
    from gristmill.pipelines import execute

    pipeline = load_target(target)
    if config_path:
        pipeline = pipeline.with_options(config=config_path)
    options: dict[str, Any] = {}
    if stack_name:
        options["stack"] = stack_name
    if no_cache:
        options["enable_cache"] = False
    if run_name:
        options["run_name"] = run_name
    if tags:
        options["tags"] = list(tags)
    if experiment:
        options["experiment"] = experiment
    if orchestrator or max_workers:
        spec: dict[str, Any] = {"flavor": orchestrator or "local_parallel"}
        if max_workers:
            spec["max_workers"] = max_workers
        options["orchestrator"] = spec
    if options:
        pipeline = pipeline.with_options(**options)
    plan = pipeline.compile(**parse_parameters(params, pipeline.parameters))
    if not as_json:
        console(stderr=True).print(
            f"Running [bold]{escape(plan.spec.name)}[/] as [bold]{escape(plan.run_name)}[/] "
            f"({len(plan.order)} steps)"
        )
    progress = _Progress(len(plan.order), enabled=not as_json)
    # With --json, stdout carries only the JSON document: what steps print goes to stderr.
    stdout = contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext()
    try:
        with progress, stdout:
            result = execute(
                plan,
                orchestrator=pipeline.orchestrator_options,
                listeners=[progress],
                stack_name=pipeline.stack_name,
            )
    except KeyboardInterrupt as exc:
        # Ctrl-C: the run is recorded as stopped; say where, and exit as interrupted (as a
        # shell does: 128 + SIGINT), not with click's "Aborted!" and 1.
        console(stderr=True).print(
            f"[magenta]{escape(str(exc) or 'interrupted')}[/]", soft_wrap=True
        )
        sys.exit(130)
    except RunFailedError as exc:
        if exc.run is None:
            raise
        if as_json:
            print_json(_run_json(exc.run))
        else:
            render_run(exc.run)
        sys.exit(1)
    if as_json:
        print_json(_run_json(result))
    else:
        render_run(result)


def _run_json(run: Any) -> dict[str, Any]:
    return {
        **run.to_dict(),
        "metadata": run.metadata,
        "steps": [s.to_dict() for s in run.steps.values()],
    }
