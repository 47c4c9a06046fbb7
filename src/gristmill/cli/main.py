"""Entry point and the lazy command group."""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from typing import Any

import click

from gristmill._version import __version__

# The grammar: `gristmill NOUN VERB [ARGS]`. Records the store accumulates are plural nouns
# (runs, steps, artifacts, pipelines); things you configure one by one are singular (stack,
# component, secret, store). The few workflow verbs stand alone (init, run, reproduce, rerun,
# info). Every noun's other number is accepted too (ALIASES, hidden in --help), and
# `gristmill run list` (run is the verb) points to `gristmill runs list`.
#
# name → (module:attribute, one-line help, section). The help is written here so `--help`
# does not import every command module.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "init": (
        "gristmill.cli.project:init",
        "Create .gristmill/ (SQLite store, local artifacts) here.",
        "Workflow",
    ),
    "run": (
        "gristmill.cli.running:run",
        "Run a pipeline: MODULE:PIPELINE, FILE.py:PIPELINE or a YAML file.",
        "Workflow",
    ),
    "reproduce": (
        "gristmill.cli.reproduce:reproduce",
        "Run a past run again and check its artifacts match.",
        "Workflow",
    ),
    "rerun": (
        "gristmill.cli.reproduce:rerun",
        "Run a step of a past run and what follows it again.",
        "Workflow",
    ),
    "up": (
        "gristmill.cli.server:up",
        "Serve this project (API and dashboard) locally; prints the URL.",
        "Workflow",
    ),
    "info": (
        "gristmill.cli.admin:info",
        "Version, project, store, active stack, integrations.",
        "Workflow",
    ),
    "runs": ("gristmill.cli.runs:runs", "List, inspect, compare and delete runs.", "Records"),
    "steps": ("gristmill.cli.runs:steps", "Inspect step runs (logs).", "Records"),
    "experiments": (
        "gristmill.cli.experiments:experiments",
        "List experiments (runs grouped for comparison).",
        "Records",
    ),
    "artifacts": (
        "gristmill.cli.artifacts:artifacts",
        "List, inspect and load artifact versions; their lineage.",
        "Records",
    ),
    "models": (
        "gristmill.cli.models:models",
        "Models: versions, stages (promote), artifacts; register, delete.",
        "Records",
    ),
    "pipelines": (
        "gristmill.cli.pipeline:pipeline",
        "List pipelines, export one as YAML, validate one; file schemas.",
        "Records",
    ),
    "stack": (
        "gristmill.cli.stacks:stack",
        "Register, pick, export and import stacks.",
        "Configuration",
    ),
    "component": (
        "gristmill.cli.stacks:component",
        "Register and manage stack components.",
        "Configuration",
    ),
    "secret": (
        "gristmill.cli.admin:secret",
        "Manage secrets (encrypted, referenced from settings).",
        "Configuration",
    ),
    "store": (
        "gristmill.cli.admin:store",
        "Show or choose the project's metadata store.",
        "Configuration",
    ),
    "connect": (
        "gristmill.cli.connect:connect",
        "Record through a gristmill server (URL and token saved for this user).",
        "Configuration",
    ),
    "disconnect": (
        "gristmill.cli.connect:disconnect",
        "Forget the server `connect` saved.",
        "Configuration",
    ),
    "server": (
        "gristmill.cli.server:server",
        "Start the gristmill server (production: workers, PostgreSQL).",
        "Configuration",
    ),
    "user": (
        "gristmill.cli.server:user",
        "Server users: create, list, set-role, delete.",
        "Configuration",
    ),
    "token": (
        "gristmill.cli.server:token",
        "Server API tokens: create (shown once), list, revoke.",
        "Configuration",
    ),
}
SECTIONS = ("Workflow", "Records", "Configuration")

# Other spellings: a noun's other number, and commands that moved under their noun.
ALIASES: dict[str, str] = {
    "step": "steps",
    "experiment": "experiments",
    "artifact": "artifacts",
    "pipeline": "pipelines",
    "model": "models",
    "stacks": "stack",
    "components": "component",
    "secrets": "secret",
    "stores": "store",
    "users": "user",
    "tokens": "token",
}
# Top-level names of commands that live in a group now: name → (group, command).
MOVED: dict[str, tuple[str, str]] = {
    "lineage": ("artifacts", "lineage"),
    "schema": ("pipelines", "schema"),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in MOVED:
            group_name, sub = MOVED[cmd_name]
            parent = self.get_command(ctx, group_name)
            assert isinstance(parent, click.Group)
            return parent.get_command(ctx, sub)
        cmd_name = ALIASES.get(cmd_name, cmd_name)
        if cmd_name not in COMMANDS:
            return None
        module_name, _, attribute = COMMANDS[cmd_name][0].partition(":")
        command: click.Command = getattr(importlib.import_module(module_name), attribute)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        for section in SECTIONS:
            rows = [(name, help) for name, (_, help, where) in COMMANDS.items() if where == section]
            with formatter.section(f"{section} commands"):
                formatter.write_dl(rows)

    def resolve_command(self, ctx: click.Context, args: list[str]) -> Any:
        from gristmill.cli._groups import suggestion

        name = args[0] if args else ""
        if name.startswith("-"):
            return super().resolve_command(ctx, args)
        if name and name not in COMMANDS and name not in ALIASES and name not in MOVED:
            ctx.fail(suggestion(ctx, name, COMMANDS, [*ALIASES, *MOVED]))
        if name == "run" and len(args) > 1:
            self._refuse_run_verb(ctx, args[1])
        return super().resolve_command(ctx, args)

    def _refuse_run_verb(self, ctx: click.Context, word: str) -> None:
        """`gristmill run list` means `gristmill runs list`: `run` is the verb that runs a
        pipeline, and a pipeline is never named by a bare word (MODULE:NAME, FILE.py:NAME
        or a YAML file)."""
        if ":" in word or word.startswith("-") or Path(word).exists():
            return
        runs = self.get_command(ctx, "runs")
        target = runs.get_command(ctx, word) if isinstance(runs, click.Group) else None
        if target is not None:
            ctx.fail(
                f"no such command `{ctx.command_path} run {word}`: `run` runs a pipeline "
                f"(MODULE:PIPELINE, FILE.py:PIPELINE or a YAML file) — did you mean "
                f"`{ctx.command_path} runs {target.name}`?"
            )


@click.group("gristmill", cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="gristmill")
@click.option(
    "--project",
    type=click.Path(file_okay=False),
    help="Project folder holding .gristmill/ [env: GRISTMILL_PROJECT].",
)
@click.option("--store", "store_url", help="Metadata store URL [env: GRISTMILL_STORE_URL].")
def cli(project: str | None, store_url: str | None) -> None:
    """gristmill: typed ML pipelines, run locally in milliseconds, tracked end to end.

    Grammar: gristmill NOUN VERB [ARGS] (runs list, stack set, artifacts show); nouns of
    records are plural, of configuration singular, and the other number works too. Every
    listing takes --json.
    """
    if project:
        os.environ["GRISTMILL_PROJECT"] = str(Path(project).resolve())
    if store_url:
        os.environ["GRISTMILL_STORE_URL"] = store_url


def main() -> None:
    # Not click's standalone mode: it turns Ctrl-C into "Aborted!" and exit status 1, where a
    # shell (and CI) expects 130, the status of a process stopped by SIGINT.
    try:
        code = cli.main(prog_name="gristmill", standalone_mode=False)
    except (KeyboardInterrupt, click.exceptions.Abort):
        click.echo("interrupted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    sys.exit(code if isinstance(code, int) else 0)
