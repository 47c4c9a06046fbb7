"""``gristmill runs list/show/wait/stop/diff/compare/reap/delete``, ``gristmill steps logs``.
Only ``runs stop``, ``runs reap`` and ``runs delete`` write (and ``runs wait``, which marks
dead runs failed while it waits, and stops its run on Ctrl-C)."""

from __future__ import annotations

from typing import Any

import click

from gristmill.cli._groups import group
from gristmill.cli._output import (
    console,
    escape,
    handles_errors,
    json_option,
    print_json,
    seconds,
    shorten,
    size,
    status_text,
    table,
    type_label,
    when,
    write_text,
)
from gristmill.cli.experiments import compare_runs
from gristmill.cli.reproduce import diff


def _client() -> Any:
    from gristmill.client import Client

    return Client()


def render_run(run: Any, *, show_config: bool = False) -> None:
    """The run, its steps, metrics and outputs, as people read them."""
    out = console()
    out.print(
        f"\n[bold]Run[/] {escape(run.name, lines=False)}  {status_text(run.status)}  "
        f"[dim]id {escape(run.id, lines=False)} · pipeline {escape(run.pipeline_name, lines=False)}"
        f" · {seconds(run.duration)}[/]"
    )
    if run.parameters:
        # Each value shortened: a huge parameter must not take the terminal (or minutes).
        params = ", ".join(f"{k}={_short_repr(v)}" for k, v in run.parameters.items())
        out.print(f"[bold]Parameters[/] {escape(params, lines=False)}")
    steps = table("step", "status", "duration", "outputs", title="Steps")
    for step in run.steps.values():
        outputs = ", ".join(f"{name} → {av.name}:{av.version}" for name, av in step.outputs.items())
        steps.add_row(
            escape(step.name, lines=False),
            status_text(step.status),
            seconds(step.duration),
            escape(outputs, lines=False) or "-",
        )
    out.print(steps)
    if run.metadata:
        metrics = table("metric", "value", title="Metrics")
        for key, value in run.metadata.items():
            metrics.add_row(
                escape(key, lines=False), escape(_format_value(value), limit=PARAMETER_CHARS)
            )
        out.print(metrics)
    artifacts = table("artifact", "type", "size", "preview", "id", title="Artifacts")
    seen = set()
    for step in run.steps.values():
        for av in step.outputs.values():
            if av.id in seen:
                continue
            seen.add(av.id)
            artifacts.add_row(
                f"{escape(av.name, lines=False)}:{av.version}",
                escape(type_label(av.data_type), lines=False),
                size(av.size),
                escape((av.preview or "")[:60], lines=False),
                escape(av.id[:12]),
            )
    if seen:
        out.print(artifacts)
    if run.status == "submitted":
        out.print(
            f"[dim]Handed to the {escape(run.orchestrator or 'engine', lines=False)} engine: "
            f"follow it with `gristmill runs wait {escape(run.name, lines=False)}`, stop it "
            f"with `gristmill runs stop {escape(run.name, lines=False)}`.[/]"
        )
    if run.error:
        out.print(f"[bold red]Error:[/] {escape(run.error, limit=ERROR_CHARS)}")
        failed = [s for s in run.steps.values() if s.status == "failed"]
        for step in failed:
            out.print(
                f"[red]--- step {escape(step.name, lines=False)} ---[/]\n"
                f"{escape((step.error or '').rstrip(), limit=ERROR_CHARS)}"
            )
    if show_config:
        from gristmill._yaml import dump_yaml

        # YAML as a run configuration file reads; long strings and lists are cut for display,
        # and escape() keeps what the store holds from acting on the terminal.
        for title, data in (
            ("Configuration", run.config),
            ("Stack", run.stack),
            ("Environment", run.environment),
        ):
            out.print(f"[bold]{title}[/]")
            out.print(escape(dump_yaml(_for_display(data)).rstrip("\n")))


def _for_display(value: Any) -> Any:
    """``value`` with strings longer than PARAMETER_CHARS and lists longer than 100 items cut."""
    if isinstance(value, str):
        return shorten(value, PARAMETER_CHARS)
    if isinstance(value, dict):
        return {str(k): _for_display(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        shown = [_for_display(v) for v in value[:100]]
        if len(value) > 100:
            shown.append(f"… ({len(value) - 100:,} more)")
        return shown
    return value


# How much of a parameter or metadata value, and of an error, `runs show` prints.
PARAMETER_CHARS = 200
ERROR_CHARS = 20_000


def _short_repr(value: Any) -> str:
    """The repr of a value, without building the whole text of a huge string first."""
    if isinstance(value, str) and len(value) > PARAMETER_CHARS:
        return f"{value[:PARAMETER_CHARS]!r}… ({len(value):,} characters)"
    return shorten(repr(value), PARAMETER_CHARS)


def _format_value(value: Any) -> str:
    if isinstance(value, float):
        return repr(round(value, 6))
    if isinstance(value, str) and len(value) > PARAMETER_CHARS:
        return shorten(value, PARAMETER_CHARS)
    return str(value)


@group()
def runs() -> None:
    """List, inspect, compare and delete runs."""


@runs.command("list")
@click.option("--pipeline", help="Only runs of this pipeline.")
@click.option(
    "--status",
    type=click.Choice(
        ["pending", "submitted", "running", "stopping", "completed", "failed", "cached", "stopped"]
    ),
)
@click.option("--experiment", help="Only runs of this experiment.")
@click.option("--limit", default=20, show_default=True, help="How many runs.")
@click.option("--offset", default=0, help="Skip this many (for paging).")
@json_option
@handles_errors
def list_runs(
    pipeline: str | None,
    status: str | None,
    experiment: str | None,
    limit: int,
    offset: int,
    as_json: bool,
) -> None:
    """Runs, newest first.

    A run whose process died shows as running until `gristmill runs reap` (or the next
    pipeline run) marks it failed: listing never changes the store."""
    client = _client()
    found = client.list_runs(
        pipeline=pipeline, status=status, limit=limit, offset=offset, experiment=experiment
    )
    if as_json:
        print_json([r.to_dict() for r in found])
        return
    if not found:
        console().print("No runs yet: run a pipeline with `gristmill run MODULE:PIPELINE`.")
        return
    listing = table("run", "pipeline", "status", "stack", "started", "duration", "id")
    for r in found:
        listing.add_row(
            escape(r.name, lines=False),
            escape(r.pipeline_name, lines=False),
            status_text(r.status),
            escape(r.stack.get("name", "-"), lines=False),
            when(r.started_at),
            seconds(r.duration),
            escape(r.id[:12]),
        )
    console().print(listing)
    total = client.count_runs(pipeline=pipeline, status=status, experiment=experiment)
    if total > offset + len(found):
        console().print(
            f"[dim]{offset + len(found)} of {total} shown; --offset {offset + len(found)} for more[/]"
        )


@runs.command("show")
@click.argument("run", default="latest")
@click.option(
    "--config",
    "show_config",
    is_flag=True,
    help="Also show the resolved configuration and environment.",
)
@click.option(
    "--packages",
    "show_packages",
    is_flag=True,
    help="Print the run's installed packages (requirements format).",
)
@json_option
@handles_errors
def show_run(run: str, show_config: bool, show_packages: bool, as_json: bool) -> None:
    """One run (id, id prefix, name or 'latest'): steps, metrics, artifacts."""
    found = _client().get_run(run)
    if show_packages:
        from gristmill.execution.environment import package_list

        digest = found.environment.get("packages", {}).get("hash")
        if not digest:
            from gristmill.errors import NotFoundError

            raise NotFoundError(f"run {found.name} recorded no package list")
        write_text("".join(f"{line}\n" for line in package_list(found.artifact_store, digest)))
        return
    if as_json:
        data = {
            **found.to_dict(),
            "metadata": found.metadata,
            "steps": [s.to_dict() for s in found.steps.values()],
        }
        if show_config:
            data["config"] = found.config
            data["stack"] = found.stack
            data["environment"] = found.environment
        print_json(data)
        return
    render_run(found, show_config=show_config)


# Exit statuses of `runs wait` and `runs stop`: as `gristmill run` for the same ending
# (130 is a shell's for Ctrl-C), and 124 when the wait timed out (as `timeout` does).
EXIT_BY_STATUS = {"completed": 0, "cached": 0, "failed": 1, "stopped": 130}
EXIT_TIMED_OUT = 124


@runs.command("wait")
@click.argument("run", default="latest")
@click.option("--timeout", type=float, help="Give up after this many seconds (exit 124).")
@click.option("--poll", type=float, default=1.0, show_default=True, help="Seconds between reads.")
@json_option
@handles_errors
def wait_run(run: str, timeout: float | None, poll: float, as_json: bool) -> None:
    """Follow RUN (id, id prefix, name or 'latest') until it ends, wherever it runs: a run
    handed to an engine (submitted), or one running in another process.

    Exit status: 0 completed, 1 failed, 130 stopped, 124 when --timeout passed first (the run
    goes on). Ctrl-C stops the run (as `gristmill runs stop` does) and exits 130. Dead runs
    are marked failed every 30 s while waiting, as `gristmill runs reap` does."""
    import sys

    from gristmill.client import wait_for_run
    from gristmill.errors import RunTimeoutError

    client = _client()
    found = client.get_run(run)
    progress = _StepProgress(client.store, found.id, enabled=not as_json)
    err = console(stderr=True)
    try:
        if not as_json:
            err.print(
                f"Waiting for run [bold]{escape(found.name, lines=False)}[/] "
                f"({status_text(found.status)})"
            )
        wait_for_run(client.store, found.id, timeout=timeout, poll=poll, on_read=progress)
    except RunTimeoutError as exc:
        err.print(f"[yellow]{escape(str(exc))}[/]")
        sys.exit(EXIT_TIMED_OUT)
    except KeyboardInterrupt:
        err.print(f"[magenta]Ctrl-C: stopping run {escape(found.name, lines=False)}…[/]")
        found.stop()
    found.refresh()
    if as_json:
        print_json(
            {
                **found.to_dict(),
                "metadata": found.metadata,
                "steps": [s.to_dict() for s in found.steps.values()],
            }
        )
    else:
        render_run(found)
    sys.exit(EXIT_BY_STATUS.get(found.status, 1))


@runs.command("stop")
@click.argument("run")
@click.option(
    "--grace",
    type=float,
    default=30.0,
    show_default=True,
    help="Seconds for the run's workers to stop its running steps themselves.",
)
@json_option
@handles_errors
def stop_run(run: str, grace: float, as_json: bool) -> None:
    """Stop RUN (id, id prefix, name or 'latest'). The stop is recorded in the store: the
    process running a blocking run ends it within a second or so, as Ctrl-C would; a run
    handed to an engine is also stopped there where the engine can (Dask: its tasks are
    cancelled), its workers stop its running steps, and what has not ended after --grace
    seconds is recorded stopped. A run that already ended is left as it is.

    Exit status 0 once the run has ended (whatever its status), 1 if a blocking run's process
    did not end it within --grace."""
    found = _client().get_run(run)
    before = found.status
    found.stop(grace=grace)
    if as_json:
        print_json(found.to_dict())
        return
    if before in ("completed", "failed", "cached", "stopped"):
        console().print(
            f"Run {escape(found.name, lines=False)} had already ended: {status_text(found.status)}"
        )
        return
    console().print(f"Run {escape(found.name, lines=False)} {status_text(found.status)}")


class _StepProgress:
    """Prints each step of a followed run as it ends (what `gristmill run` shows live)."""

    def __init__(self, store: Any, run_id: str, *, enabled: bool) -> None:
        self._store = store
        self._run_id = run_id
        self._enabled = enabled
        self._shown: set[str] = set()
        self._status: str | None = None

    def __call__(self, record: Any) -> None:
        if not self._enabled:
            return
        err = console(stderr=True)
        if self._status is not None and record.status != self._status:
            err.print(f"  run is {status_text(record.status)}")
        self._status = record.status
        for step in self._store.get_step_runs(self._run_id):
            if step.status in ("completed", "cached", "failed", "stopped") and (
                step.name not in self._shown
            ):
                self._shown.add(step.name)
                err.print(f"  {status_text(step.status):<22} {escape(step.name, lines=False)}")


@runs.command("reap")
@click.option(
    "--stale-after",
    type=float,
    help="Seconds without a heartbeat after which a run on another host is dead [default: 120].",
)
@json_option
@handles_errors
def reap_runs(stale_after: float | None, as_json: bool) -> None:
    """Mark runs whose process died as failed: a process gone from this host, or a run on
    another host with no heartbeat for two minutes. Their finished steps keep their outputs.
    Running a pipeline does this too; reading runs never does."""
    reaped = _client().reap_dead_runs(stale_after=stale_after)
    if as_json:
        print_json([r.to_dict() for r in reaped])
        return
    if not reaped:
        console().print("No dead runs: every running run is alive.")
        return
    for r in reaped:
        console().print(
            f"{escape(r.name, lines=False)}  {status_text(r.status)}  "
            f"[dim]{escape(r.error or '', limit=ERROR_CHARS)}[/]"
        )


@runs.command("delete")
@click.argument("refs", nargs=-1, required=True, metavar="RUN...")
@click.option("-y", "--yes", is_flag=True, help="Delete without asking.")
@click.option(
    "--force",
    is_flag=True,
    help="Also delete runs still marked pending or running (only when their process is gone).",
)
@json_option
@handles_errors
def delete_runs(refs: tuple[str, ...], yes: bool, force: bool, as_json: bool) -> None:
    """Delete runs (id, id prefix, name or 'latest'), their step runs, lineage edges, metadata
    and log records, and the artifact versions only they produced that no other run used.

    The artifacts' bytes stay in the artifact store: they are content-addressed and may be
    shared; removing bytes nothing refers to is not done here. A version another run also
    lists as an output (a cache hit) stays. Refused, deleting nothing, for a run still running
    (unless --force) and for a run whose artifact versions other runs used as inputs: delete
    those runs first, or name them in the same command."""
    client = _client()
    plan = client.delete_runs(list(refs), force=force, dry_run=True)
    if not yes:
        _describe_deletion(plan, console(stderr=True))
        click.confirm("Delete?", abort=True, err=True)
    done = client.delete_runs([r.id for r in plan.runs], force=force)
    if as_json:
        print_json(
            {
                "runs": [r.id for r in done.runs],
                "step_runs": done.step_runs,
                "artifact_versions": [av.id for av in done.artifact_versions],
                "kept_artifact_versions": [av.id for av in done.kept_artifact_versions],
            }
        )
        return
    names = ", ".join(escape(r.name, lines=False) for r in done.runs)
    console().print(
        f"Deleted {_count(len(done.runs), 'run')} ({names}), {_count(done.step_runs, 'step run')} "
        f"and {_count(len(done.artifact_versions), 'artifact version')}."
    )


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _describe_deletion(plan: Any, out: Any) -> None:
    for r in plan.runs:
        out.print(
            f"run [bold]{escape(r.name, lines=False)}[/]  {status_text(r.status)}  "
            f"[dim]{escape(r.pipeline_name, lines=False)} · id {escape(r.id[:12])}[/]"
        )
    out.print(f"  {_count(plan.step_runs, 'step run')}, with their metadata and log records")
    if plan.artifact_versions:
        listed = ", ".join(
            f"{escape(av.artifact_name, lines=False)}:{av.version}" for av in plan.artifact_versions
        )
        out.print(f"  {_count(len(plan.artifact_versions), 'artifact version')}: {listed}")
    if plan.kept_artifact_versions:
        listed = ", ".join(
            f"{escape(av.artifact_name, lines=False)}:{av.version}"
            for av in plan.kept_artifact_versions
        )
        out.print(f"  [dim]kept, other runs list them as outputs: {listed}[/]")
    out.print("  [dim]artifact bytes stay in the artifact store (content-addressed, shared)[/]")


@group()
def steps() -> None:
    """Inspect step runs."""


@steps.command("logs")
@click.argument("run")
@click.argument("step")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new lines while the step runs.")
@handles_errors
def step_logs(run: str, step: str, follow: bool) -> None:
    """What STEP of RUN printed and logged (RUN: id, name or 'latest'). With --follow, lines
    appear about once a second while the step runs; it returns when the step has ended."""
    client = _client()
    found = client.get_run(run)
    if not follow:
        text = found.step(step).logs()
        if not text:
            console(stderr=True).print(f"[dim]step '{escape(step)}' printed nothing[/]")
            return
        write_text(text if text.endswith("\n") else text + "\n")
        return
    import time

    from gristmill.store import Status

    shown = 0
    while True:
        step_run = client.get_run(found.id).step(step)
        text = step_run.logs()
        if len(text) > shown:
            write_text(text[shown:])
            shown = len(text)
        if step_run.status in Status.FINISHED:
            if text and not text.endswith("\n"):
                write_text("\n")
            return
        time.sleep(1.0)


runs.add_command(diff, "diff")
runs.add_command(compare_runs, "compare")
