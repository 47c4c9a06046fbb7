"""The command grammar: `gristmill NOUN VERB`, plural nouns for records and singular ones for
configuration, the other number (and common verb synonyms) accepted but not listed, one
"no such command" message everywhere, and `run list` pointing to `runs list`."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from gristmill.cli.main import ALIASES, COMMANDS, MOVED, cli


def invoke(*args: str) -> click.testing.Result:
    return CliRunner().invoke(cli, list(args))


def words(result: click.testing.Result) -> str:
    return " ".join(result.output.split())


def test_help_lists_one_spelling_of_each_command() -> None:
    shown = invoke("--help").output
    for name in COMMANDS:
        assert f"\n  {name} " in shown
    for hidden in [*ALIASES, *MOVED]:
        assert f"\n  {hidden} " not in shown
    assert shown.index("Workflow commands") < shown.index("Records commands")
    assert shown.index("Records commands") < shown.index("Configuration commands")


@pytest.mark.parametrize(
    ("spelling", "canonical"),
    [
        (["pipeline", "list"], ["pipelines", "list"]),
        (["artifact", "list"], ["artifacts", "list"]),
        (["step", "logs"], ["steps", "logs"]),
        (["stacks", "list"], ["stack", "list"]),
        (["components", "list"], ["component", "list"]),
        (["secrets", "list"], ["secret", "list"]),
        (["stores", "show"], ["store", "show"]),
        (["lineage"], ["artifacts", "lineage"]),
        (["schema"], ["pipelines", "schema"]),
        (["runs", "ls"], ["runs", "list"]),
        (["runs", "rm"], ["runs", "delete"]),
        (["runs", "describe"], ["runs", "show"]),
        (["stack", "show"], ["stack", "describe"]),
        (["component", "show"], ["component", "describe"]),
    ],
)
def test_other_spellings_reach_the_same_command(spelling: list[str], canonical: list[str]) -> None:
    def resolve(path: list[str]) -> click.Command:
        ctx = click.Context(cli)
        command: click.Command = cli
        for word in path:
            assert isinstance(command, click.Group)
            found = command.get_command(ctx, word)
            assert found is not None, path
            command = found
        return command

    assert resolve(spelling) is resolve(canonical)


def test_aliases_are_hidden_in_group_help() -> None:
    shown = invoke("runs", "--help").output
    for verb in ("list", "show", "diff", "reap", "delete"):
        assert f"\n  {verb} " in shown
    for synonym in ("ls", "rm", "describe"):
        assert f"\n  {synonym} " not in shown


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["rnus"], "no such command `gristmill rnus` — did you mean `gristmill runs`?"),
        (
            ["runs", "lsit"],
            "no such command `gristmill runs lsit` — did you mean `gristmill runs list`?",
        ),
        (
            ["stack", "regster"],
            "no such command `gristmill stack regster` — did you mean `gristmill stack register`?",
        ),
        (
            ["artifacts", "zzz"],
            "no such command `gristmill artifacts zzz` (commands: lineage, list, load, show)",
        ),
        (
            ["zzz"],
            "no such command `gristmill zzz` (commands: artifacts, component, connect, disconnect, experiments, info,",
        ),
        (["pipline"], "did you mean `gristmill pipeline`?"),
    ],
)
def test_one_style_of_no_such_command(args: list[str], message: str) -> None:
    result = invoke(*args)
    assert result.exit_code == 2
    assert message in words(result)
    assert "No such command" not in result.output  # click's own style never shows


@pytest.mark.parametrize("verb", ["list", "show", "delete", "ls", "diff"])
def test_run_list_points_to_runs_list(verb: str) -> None:
    result = invoke("run", verb)
    assert result.exit_code == 2
    canonical = {"ls": "list"}.get(verb, verb)
    assert f"did you mean `gristmill runs {canonical}`?" in words(result)
    assert "`run` runs a pipeline" in words(result)


def test_run_still_runs_pipelines_named_like_verbs() -> None:
    """A pipeline reference is never a bare word, so `run list:training` is a run."""
    result = invoke("run", "list:training")
    assert "did you mean" not in result.output
    assert "cannot import module 'list'" in words(result)
