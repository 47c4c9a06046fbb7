"""``python -m gristmill.execution --run RUN --step STEP [--step ...]``: run steps of a run that
was recorded elsewhere. Remote orchestrators (Airflow, Kubeflow, Argo, ...) call this; exit
status 0 when every step succeeded (or was cached), 1 otherwise."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gristmill.execution", description=__doc__)
    parser.add_argument("--run", required=True, help="run id or name")
    parser.add_argument("--step", action="append", required=True, help="step id (repeatable)")
    args = parser.parse_args(argv)

    from gristmill.errors import GristmillError
    from gristmill.execution.run import RunContext
    from gristmill.project import find_project
    from gristmill.store import Status

    try:
        run = RunContext.attach(args.run, project=find_project())
        ok = True
        for step_id in args.step:
            if step_id not in run.plan.steps:
                parser.error(f"run {run.plan.run_name} has no step '{step_id}'")
            outcome = run.launch(step_id)
            if outcome.status not in Status.SUCCEEDED:
                print(f"step '{step_id}' {outcome.status}: {outcome.error}", file=sys.stderr)
                ok = False
    except GristmillError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
