"""``python -m gristmill.execution``: run steps of a run recorded elsewhere, in this process.

- ``--run RUN --step STEP [--step ...]`` (or ``step --run RUN STEP ...``): remote orchestrators
  (Dask, Ray, Airflow, Kubeflow, Argo, ...) call this per step;
- ``start PIPELINE [--stack NAME] [--config FILE]``: record a new run of a stored pipeline's
  latest version (for schedulers that start runs themselves) and print its id;
- ``finish --run RUN``: set the run's final status from its steps' recorded outcomes.

The stores come from the environment (``GRISTMILL_STORE_URL``, ``GRISTMILL_PROJECT``,
``GRISTMILL_SECRETS_KEY``), never from the command line. Exit status 0 when every step
succeeded (or was cached), 1 otherwise."""

from __future__ import annotations

import argparse
import sys

VERBS = ("start", "step", "finish")


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
    from gristmill.execution.worker import launch_in_worker, worker_project
    from gristmill.store import Status

    # Only these steps are compiled: the worker imports their code, not the whole plan's.
    run = RunContext.attach(run_ref, project=worker_project(), steps=step_ids)
    ok = True
    for step_id in step_ids:
        if step_id not in run.plan.steps:
            print(f"error: run {run.plan.run_name} has no step '{step_id}'", file=sys.stderr)
            return 2
        result = launch_in_worker(run, step_id)
        if result.status not in Status.SUCCEEDED:
            print(f"step '{step_id}' {result.status}: {result.error}", file=sys.stderr)
            ok = False
    return 0 if ok else 1


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
    from gristmill.execution.run import RunContext
    from gristmill.execution.worker import worker_project
    from gristmill.store import Status

    run = RunContext.attach(run_ref, project=worker_project())
    status = run.finish()
    print(status)
    return 0 if status in Status.SUCCEEDED else 1


if __name__ == "__main__":
    sys.exit(main())
