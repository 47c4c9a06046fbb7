"""``python -m gristmill.execution``: run steps of a run recorded elsewhere, in this process.

- ``--run RUN --step STEP [--step ...]`` (or ``step --run RUN STEP ...``): remote orchestrators
  (Dask, Ray, Airflow, Kubeflow, Argo, ...) call this per step;
- ``start PIPELINE [--stack NAME] [--config FILE]``: record a new run of a stored pipeline's
  latest version (for schedulers that start runs themselves) and print its id;
- ``finish --run RUN``: set the run's final status from its steps' recorded outcomes.

The stores come from the environment (``GRISTMILL_STORE_URL``, ``GRISTMILL_PROJECT``,
``GRISTMILL_SECRETS_KEY``; for a server URL, ``GRISTMILL_API_TOKEN``), never from the command
line. ``step`` exits 0 when every step succeeded (or was cached), 130 when one was stopped (a
stop request for the run, ``gristmill runs stop``, read before each step starts and while it
runs; or SIGTERM/Ctrl-C), 1 when one failed, 2 for a step the run does not have."""

from __future__ import annotations

import argparse
import sys

VERBS = ("start", "step", "finish")
# Exit statuses of ``step``: as ``gristmill runs wait`` for the same ending (130: stopped).
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_STOPPED = 0, 1, 2, 130


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    verb = argv.pop(0) if argv and argv[0] in VERBS else "step"
    parser = argparse.ArgumentParser(
        prog=f"python -m gristmill.execution {verb}", description=__doc__
    )
    if verb == "start":
        parser.add_argument("pipeline", help="a stored pipeline's name")
        parser.add_argument("--stack", help="the stack to record (default: the active one)")
        parser.add_argument("--config", help="a run configuration file (YAML)")
    else:
        parser.add_argument("--run", required=True, help="run id or name")
    if verb == "step":
        parser.add_argument("steps", nargs="*", help="step ids")
        parser.add_argument("--step", action="append", default=[], help="step id (repeatable)")
    args = parser.parse_args(argv)

    from gristmill.errors import GristmillError

    try:
        if verb == "start":
            print(_start(args.pipeline, stack_name=args.stack, config_file=args.config))
            return 0
        if verb == "finish":
            return _finish(args.run)
        steps = [*args.steps, *args.step]
        if not steps:
            parser.error("name at least one step")
        return _steps(args.run, steps)
    except GristmillError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _steps(run_ref: str, step_ids: list[str]) -> int:
    from gristmill.execution.run import RunContext
    from gristmill.execution.worker import launch_in_worker, use_run_code, worker_project
    from gristmill.store import Status

    # Only these steps are compiled: the worker imports their code, not the whole plan's,
    # from the working copy or, when it is not here (or changed), the run's code snapshot.
    project = worker_project()
    run = RunContext.attach(run_ref, project=project, steps=())
    unknown = [s for s in step_ids if s not in run.plan.order]
    if unknown:
        print(f"error: run {run.plan.run_name} has no step '{unknown[0]}'", file=sys.stderr)
        return EXIT_USAGE
    use_run_code(run, step_ids, project=project)
    run.add_steps(step_ids)
    _terminate_as_interrupt()
    code = EXIT_OK
    for step_id in step_ids:
        try:
            # A run asked to stop: the step is recorded stopped without running, or, while it
            # runs, interrupted (its worker watches the run); the steps after it then too.
            result = launch_in_worker(run, step_id)
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM from the engine: recorded stopped
            rest = step_ids[step_ids.index(step_id) + 1 :]
            run.skip(rest, f"the worker was interrupted in step '{step_id}'")
            print(f"step '{step_id}' stopped: interrupted", file=sys.stderr)
            return EXIT_STOPPED
        if result.status == Status.STOPPED:
            print(f"step '{step_id}' stopped: {result.error}", file=sys.stderr)
            code = EXIT_STOPPED
        elif result.status not in Status.SUCCEEDED:
            print(f"step '{step_id}' {result.status}: {result.error}", file=sys.stderr)
            code = code or EXIT_FAILED
    return code


def _terminate_as_interrupt() -> None:
    """SIGTERM (what engines send a task they kill: Airflow, Kubernetes, the ``subprocess``
    operator) interrupts the step as Ctrl-C does, so that it is recorded ``stopped`` instead
    of being left ``running`` for the reaper."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return  # main() called from a thread (tests): signals are the program's business

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"terminated (signal {signum})")

    signal.signal(signal.SIGTERM, interrupt)


def _start(pipeline: str, *, stack_name: str | None, config_file: str | None) -> str:
    from gristmill.execution.plan import compile_run
    from gristmill.execution.run import RunContext
    from gristmill.execution.worker import worker_project
    from gristmill.options import RunConfig
    from gristmill.spec import PipelineSpec
    from gristmill.store.ids import pipeline_version_id

    project = worker_project()
    store = project.store()
    record = store.get_pipeline(pipeline)
    if record.latest_spec_hash is None:
        from gristmill.errors import NotFoundError

        raise NotFoundError(f"pipeline '{pipeline}' has no stored version")
    spec_json = store.get_pipeline_spec(pipeline_version_id(record.name, record.latest_spec_hash))
    config = RunConfig()
    if config_file is not None:
        import yaml

        with open(config_file, encoding="utf-8") as handle:
            config = RunConfig.from_dict(yaml.safe_load(handle) or {})
    plan = compile_run(PipelineSpec.from_json(spec_json), config)
    stack = project.stack(stack_name)
    run = RunContext(
        plan,
        store=store,
        artifact_store=project.artifact_store(stack),
        stack=stack,
        orchestrator=stack.component("orchestrator").flavor,
    )
    run.start(detached=True)
    return plan.run_id


def _finish(run_ref: str) -> int:
    """Set the run's final status from its steps (``stopped`` when a stop was requested); a
    run that already ended (``gristmill runs stop`` ended it) is left as it is. Exits as
    ``step`` does for the same ending."""
    from gristmill.execution.run import RunContext
    from gristmill.execution.worker import worker_project
    from gristmill.store import Status

    run = RunContext.attach(run_ref, project=worker_project())
    status = run.store.get_run(run.plan.run_id).status
    if status not in Status.FINISHED:
        status = run.finish(interrupted=status == Status.STOPPING)
    print(status)
    if status in Status.SUCCEEDED:
        return EXIT_OK
    return EXIT_STOPPED if status == Status.STOPPED else EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
