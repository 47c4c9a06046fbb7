"""``gristmill reproduce``, ``gristmill rerun`` and ``gristmill runs diff``."""

from __future__ import annotations

import sys
from typing import Any

import click

from gristmill.cli._output import (
    clean,
    console,
    escape,
    handles_errors,
    json_option,
    print_json,
    status_text,
    table,
)

code_option = click.option(
    "--code",
    type=click.Choice(["original", "current"]),
    default="original",
    show_default=True,
    help="The code the run recorded (its source snapshot) or the code as it is now.",
)


@click.command()
@click.argument("run")
@click.option("--cache", is_flag=True, help="Allow cache hits (by default every step runs again).")
@code_option
@json_option
@handles_errors
def reproduce(run: str, cache: bool, code: str, as_json: bool) -> None:
    """Run RUN again with the code and configuration it recorded, then compare every
    artifact's content hash. Exit status 0 only when all of them match."""
    from gristmill.reproduce import reproduce_run

    result = reproduce_run(run, code=code, cache=cache)
    if as_json:
        print_json(result.to_dict())
        sys.exit(0 if result.matches else 1)
    out = console()
    out.print(
        f"Reproduced [bold]{escape(result.original.name)}[/] as [bold]{escape(result.new.name)}[/] "
        f"({status_text(result.new.status)})"
    )
    rows = table("step", "output", "original", "reproduced", "")
    for c in result.comparisons:
        mark = "[green]same[/]" if c.same else "[bold red]differs[/]"
        rows.add_row(
            escape(c.step),
            escape(c.output),
            escape((c.before or "-")[:12]),
            escape((c.after or "missing")[:12]),
            mark,
        )
    out.print(rows)
    for change in result.environment_changes:
        out.print(f"[yellow]environment changed:[/] {escape(change)}")
    differing = [c for c in result.comparisons if not c.same]
    if result.matches:
        out.print(f"[bold green]All {len(result.comparisons)} artifacts match byte for byte.[/]")
    else:
        out.print(
            f"[bold red]{len(differing)} of {len(result.comparisons)} artifacts differ[/]: the pipeline is "
            "not deterministic (seeds, time, randomness, threads) or its environment changed"
        )
    sys.exit(0 if result.matches else 1)


@click.command()
@click.argument("run")
@click.option(
    "--from", "start", required=True, help="The step to run again (with everything after it)."
)
@code_option
@json_option
@handles_errors
def rerun(run: str, start: str, code: str, as_json: bool) -> None:
    """Run step --from of RUN, and every step that depends on it, again; the other steps
    reuse RUN's outputs."""
    from gristmill.cli.runs import render_run
    from gristmill.reproduce import rerun as rerun_from

    result = rerun_from(run, start=start, code=code)
    if as_json:
        print_json({**result.to_dict(), "steps": [s.to_dict() for s in result.steps.values()]})
    else:
        render_run(result)
    sys.exit(0 if result.status in ("completed", "cached") else 1)


@click.command("diff")
@click.argument("run_a")
@click.argument("run_b")
@json_option
@handles_errors
def diff(run_a: str, run_b: str, as_json: bool) -> None:
    """What differs between RUN_A and RUN_B: parameters, configuration, code (with the diff of
    each changed file), git, Python and packages, artifacts, metrics."""
    from gristmill.reproduce import diff_runs

    result = diff_runs(run_a, run_b)
    if as_json:
        print_json(result)
        return
    out = console()
    out.print(
        f"[bold]a[/] = {escape(result['a']['name'])}   [bold]b[/] = {escape(result['b']['name'])}"
    )
    if result["same"]:
        out.print(
            "[green]No differences in parameters, configuration, code, packages, artifacts or metrics.[/]"
        )
    _pairs(out, "Parameters", result["parameters"])
    _pairs(out, "Configuration", result["config"])
    _pairs(out, "Git", result["git"])
    _pairs(out, "Python", result["python"])
    _pairs(out, "Packages", result["packages"])
    _pairs(out, "Metrics", result["metrics"])
    if result["artifacts"]:
        rows = table("step", "output", "a", "b", title="Artifacts that differ")
        for item in result["artifacts"]:
            rows.add_row(
                escape(item["step"]),
                escape(item["output"]),
                escape((item["a"] or "-")[:12]),
                escape((item["b"] or "-")[:12]),
            )
        out.print(rows)
    code = result["code"]
    if code["changed"]:
        out.print(
            f"[bold]Code[/] snapshot {escape(str(code['a'])[:12])} → {escape(str(code['b'])[:12])}"
        )
        for item in code["files"]:
            out.print(f"[bold]{item['state']}[/] {escape(item['path'])}")
            if item["diff"]:
                from rich.syntax import Syntax

                out.print(
                    Syntax(
                        clean(item["diff"]),
                        "diff",
                        theme="ansi_dark",
                        background_color="default",
                    )
                )


def _pairs(out: Any, title: str, pairs: dict[str, Any]) -> None:
    if not pairs:
        return
    rows = table("", "a", "b", title=title)
    for key, (a, b) in pairs.items():
        rows.add_row(escape(str(key)), escape(repr(a), limit=200), escape(repr(b), limit=200))
    out.print(rows)
