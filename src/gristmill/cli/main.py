"""Entry point and the lazy command group."""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from typing import Any

import click

from gristmill._version import __version__

# name → (module:attribute, one-line help). The help is written here so `--help` does not
# import every command module.
COMMANDS: dict[str, tuple[str, str]] = {
    "init": (
        "gristmill.cli.project:init",
        "Create .gristmill/ (SQLite store, local artifacts) here.",
    ),
    "run": (
        "gristmill.cli.running:run",
        "Run a pipeline: MODULE:PIPELINE, FILE.py:PIPELINE or a YAML file.",
    ),
    "runs": ("gristmill.cli.runs:runs", "List, inspect and compare runs."),
    "reproduce": (
        "gristmill.cli.reproduce:reproduce",
        "Run a past run again and check its artifacts match.",
    ),
    "rerun": (
        "gristmill.cli.reproduce:rerun",
        "Run a step of a past run and what follows it again.",
    ),
    "steps": ("gristmill.cli.runs:steps", "Inspect step runs (logs)."),
    "component": ("gristmill.cli.stacks:component", "Register and manage stack components."),
    "stack": ("gristmill.cli.stacks:stack", "Register, pick, export and import stacks."),
    "secret": (
        "gristmill.cli.admin:secret",
        "Manage secrets (encrypted, referenced from settings).",
    ),
    "store": ("gristmill.cli.admin:store", "Show or choose the project's metadata store."),
    "info": ("gristmill.cli.admin:info", "Version, project, store, active stack, integrations."),
    "pipeline": (
        "gristmill.cli.pipeline:pipeline",
        "Export a pipeline as YAML, validate one, list them.",
    ),
    "schema": (
        "gristmill.cli.pipeline:schema",
        "Print the JSON Schema of pipeline or run configuration files.",
    ),
    "artifacts": ("gristmill.cli.artifacts:artifacts", "List, inspect and load artifact versions."),
    "lineage": (
        "gristmill.cli.artifacts:lineage",
        "Show what an artifact version came from (or fed).",
    ),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module_name, _, attribute = COMMANDS[cmd_name][0].partition(":")
        command: click.Command = getattr(importlib.import_module(module_name), attribute)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def resolve_command(self, ctx: click.Context, args: list[str]) -> Any:
        name = args[0] if args else ""
        if name and not name.startswith("-") and name not in COMMANDS:
            from gristmill.errors import did_you_mean

            ctx.fail(f"no such command '{name}'{did_you_mean(name, COMMANDS)}")
        return super().resolve_command(ctx, args)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="gristmill")
@click.option(
    "--project",
    type=click.Path(file_okay=False),
    help="Project folder holding .gristmill/ [env: GRISTMILL_PROJECT].",
)
@click.option("--store", "store_url", help="Metadata store URL [env: GRISTMILL_STORE_URL].")
def cli(project: str | None, store_url: str | None) -> None:
    """gristmill: typed ML pipelines, run locally in milliseconds, tracked end to end.

    Grammar: gristmill NOUN VERB [ARGS]; every listing takes --json.
    """
    if project:
        os.environ["GRISTMILL_PROJECT"] = str(Path(project).resolve())
    if store_url:
        os.environ["GRISTMILL_STORE_URL"] = store_url


def main() -> None:
    try:
        cli.main(prog_name="gristmill", standalone_mode=True)
    except KeyboardInterrupt:
        sys.exit(130)
