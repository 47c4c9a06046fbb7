"""``gristmill runs compare``: runs side by side (parameters and final metrics) as a table, JSON
or CSV; and ``gristmill experiments list``. Reads only."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import click

from gristmill.cli._groups import group
from gristmill.cli._output import (
    console,
    escape,
    handles_errors,
    json_option,
    print_json,
    redacted,
    seconds,
    shorten,
    status_text,
    table,
    when,
)

# How much of one parameter value a comparison cell shows.
CELL_CHARS = 40


def _client() -> Any:
    from gristmill.client import Client

    return Client()


@click.command("compare")
@click.argument("refs", nargs=-1, metavar="RUN...")
@click.option(
    "--metric",
    "metrics",
    multiple=True,
    metavar="NAME",
    help="Show only this metric (repeatable); default: every metric the runs have.",
)
@click.option(
    "--sort",
    metavar="[-]NAME",
    help="Order by a metric, parameter or column; a leading - for descending (--sort -accuracy).",
)
@click.option("--experiment", metavar="NAME", help="Compare the latest runs of this experiment.")
@click.option("--last", default=10, show_default=True, help="How many runs of --experiment.")
@json_option
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV instead of a table.")
@handles_errors
def compare_runs(
    refs: tuple[str, ...],
    metrics: tuple[str, ...],
    sort: str | None,
    experiment: str | None,
    last: int,
    as_json: bool,
    as_csv: bool,
) -> None:
    """Runs side by side (ids, names or 'latest'; or --experiment NAME): status, duration,
    parameters and final metrics, one row per run.

    \b
    Examples:
      gristmill runs compare wine-1 wine-2 --sort -accuracy
      gristmill runs compare --experiment training --last 5 --metric accuracy --csv
    """
    if not refs and experiment is None:
        raise click.UsageError("give runs to compare (RUN...) or --experiment NAME")
    found = _client().comparison(
        list(refs),
        metrics=list(metrics) or None,
        sort=sort,
        experiment=experiment,
        last=last,
    )
    if as_json:
        print_json(found.rows)
        return
    if as_csv:
        click.echo(redacted(_csv(found.columns, found.rows)), nl=False)
        return
    _render(found)


def _render(found: Any) -> None:
    params, metrics = found.parameters, found.metrics
    both = set(params) & set(metrics)
    headers = (
        ["run", "status", "duration"]
        + [escape(f"params.{p}" if p in both else p, lines=False) for p in params]
        + [escape(f"metrics.{m}" if m in both else m, lines=False) for m in metrics]
    )
    listing = table(*headers)
    for index in range(3, len(headers)):
        column = listing.columns[index]
        column.justify = "right"
        if index >= 3 + len(params):
            column.header_style = "bold green"
    for row in found.rows:
        listing.add_row(
            escape(row["run"], lines=False),
            status_text(row["status"]),
            seconds(row["duration"]),
            *(escape(_cell(row[f"params.{p}"]), lines=False) for p in params),
            *(escape(_cell(row[f"metrics.{m}"]), lines=False) for m in metrics),
        )
    out = console()
    out.print(listing)
    described = []
    if params:
        described.append(f"parameters: {', '.join(params)}")
    if metrics:
        described.append(f"metrics (green): {', '.join(metrics)}")
    if described:
        out.print(f"[dim]{escape(' · '.join(described), lines=False)}[/]")


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e6:
            return f"{value:.1f}"
        return f"{value:.4g}"
    if isinstance(value, str):
        return shorten(value, CELL_CHARS)
    return shorten(json.dumps(value, default=str), CELL_CHARS)


def _csv(columns: list[str], rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_csv_value(row.get(c)) for c in columns])
    return buffer.getvalue()


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        return json.dumps(value, default=str)
    return value


@group()
def experiments() -> None:
    """List experiments: runs grouped for comparison (by pipeline unless chosen)."""


@experiments.command("list")
@json_option
@handles_errors
def list_experiments(as_json: bool) -> None:
    """Experiments, most recently run first, with their number of runs.
    `gristmill runs list --experiment NAME` lists one's runs, `gristmill runs compare
    --experiment NAME` compares them."""
    from datetime import datetime, timezone

    found = _client().list_experiments()
    if as_json:
        print_json(
            [
                {
                    "name": e.name,
                    "runs": e.run_count,
                    "first_run_at": datetime.fromtimestamp(e.first_run_at, timezone.utc),
                    "last_run_at": datetime.fromtimestamp(e.last_run_at, timezone.utc),
                }
                for e in found
            ]
        )
        return
    if not found:
        console().print("No experiments yet: every run of a pipeline is in one.")
        return
    listing = table("experiment", "runs", "first run", "last run")
    for e in found:
        listing.add_row(
            escape(e.name, lines=False),
            str(e.run_count),
            when(datetime.fromtimestamp(e.first_run_at, timezone.utc)),
            when(datetime.fromtimestamp(e.last_run_at, timezone.utc)),
        )
    console().print(listing)
