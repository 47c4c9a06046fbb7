"""``gristmill pipelines export/validate/list/schema`` (``gristmill pipeline ...`` and
``gristmill schema`` are the same commands)."""

from __future__ import annotations

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
    table,
    write_output,
)


@group("pipelines")
def pipeline() -> None:
    """List pipelines, export one as YAML, validate one; JSON Schemas of the files."""


@pipeline.command("export")
@click.argument("target")
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False), help="Write the YAML here (default: stdout)."
)
@click.option(
    "-p",
    "--param",
    "params",
    multiple=True,
    metavar="NAME=VALUE",
    help="Trace with this parameter value (repeatable).",
)
@click.option(
    "--freeze",
    is_flag=True,
    help="Export even if the graph depends on parameter values: the file runs the graph of the "
    "values given (which become its defaults).",
)
@handles_errors
def export(target: str, output: str | None, params: tuple[str, ...], freeze: bool) -> None:
    """Write the YAML form of TARGET (MODULE:PIPELINE, FILE.py:PIPELINE or a YAML file).
    Running the YAML gives the same spec hash, hence the same cache hits. A pipeline whose body
    branches on a parameter is refused unless --freeze (YAML has no branches)."""
    from gristmill.cli.running import load_target, parse_parameters
    from gristmill.yaml_pipelines import pipeline_to_yaml

    pipeline = load_target(target)
    values = parse_parameters(params, pipeline.parameters)
    write_output(pipeline_to_yaml(pipeline, values, freeze=freeze), output)


@pipeline.command("validate")
@click.argument("target")
@click.option(
    "-c", "--config", "config_path", type=click.Path(dir_okay=False), help="Run configuration file."
)
@click.option("-p", "--param", "params", multiple=True, metavar="KEY=VALUE")
@json_option
@handles_errors
def validate(target: str, config_path: str | None, params: tuple[str, ...], as_json: bool) -> None:
    """Check TARGET (and a run configuration) the way a run would, without running anything."""
    from gristmill.cli.running import load_target, parse_parameters

    found = load_target(target)
    if config_path:
        found = found.with_options(config=config_path)
    plan = found.compile(**parse_parameters(params, found.parameters))
    if as_json:
        print_json(
            {
                "pipeline": plan.spec.name,
                "spec_hash": plan.spec.hash,
                "steps": plan.order,
                "parameters": plan.parameters,
            }
        )
        return
    console().print(
        f"[green]valid[/]: pipeline [bold]{escape(plan.spec.name)}[/], {len(plan.order)} steps, "
        f"spec {plan.spec.hash[:12]}"
    )


@pipeline.command("list")
@json_option
@handles_errors
def list_pipelines(as_json: bool) -> None:
    """Every recorded pipeline with its number of versions and runs."""
    from gristmill.client import Client

    found = Client().list_pipelines()
    if as_json:
        print_json([p.to_dict() for p in found])
        return
    listing = table("pipeline", "versions", "runs", "latest spec")
    for p in found:
        listing.add_row(
            escape(p.name, lines=False),
            str(p.version_count),
            str(p.run_count),
            escape((p.latest_spec_hash or "")[:12]),
        )
    console().print(listing)


@click.command()
@click.argument("kind", type=click.Choice(["pipeline", "config"]))
def schema(kind: str) -> None:
    """Print the JSON Schema of pipeline files or run configuration files (for editors:
    `gristmill pipelines schema pipeline > pipeline.schema.json`)."""
    data: Any
    if kind == "pipeline":
        from gristmill.yaml_pipelines import pipeline_schema

        data = pipeline_schema()
    else:
        from gristmill.config_file import config_schema

        data = config_schema()
    click.echo(json.dumps(data, indent=2))


pipeline.add_command(schema, "schema")
