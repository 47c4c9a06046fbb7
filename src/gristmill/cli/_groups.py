"""The command grammar every group shares: other spellings accepted but not shown in --help
(a noun's other number, common verb synonyms), and one "no such command" message with a
suggestion, at the top level and inside every group. Imports nothing but click: ``--help``
must stay light."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from typing import Any

import click

# Verbs people type out of habit from other tools, tried when a group has no such command.
VERB_SYNONYMS: dict[str, tuple[str, ...]] = {
    "ls": ("list",),
    "show": ("describe",),
    "describe": ("show",),
    "get": ("show", "describe"),
    "inspect": ("show", "describe"),
    "rm": ("delete",),
    "remove": ("delete",),
    "create": ("register",),
    "add": ("register", "create"),
}


def suggestion(
    ctx: click.Context, name: str, choices: Iterable[str], hidden: Iterable[str] = ()
) -> str:
    """The one "no such command" message: the full command asked for, then the closest
    command, listed or ``hidden`` (as it is typed), or the listed ones."""
    options = sorted(set(choices))
    message = f"no such command `{ctx.command_path} {name}`"
    close = difflib.get_close_matches(name, sorted({*options, *hidden}), n=1, cutoff=0.6)
    if close:
        return f"{message} — did you mean `{ctx.command_path} {close[0]}`?"
    return f"{message} (commands: {', '.join(options)})"


class CommandGroup(click.Group):
    """A group that also accepts ``aliases`` (other name → command name, hidden in --help)
    and the verb synonyms above, and reports unknown commands in the shared style."""

    def __init__(self, *args: Any, aliases: dict[str, str] | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("context_settings", {"help_option_names": ["-h", "--help"]})
        super().__init__(*args, **kwargs)
        self.aliases = dict(aliases or {})

    def canonical_name(self, ctx: click.Context, name: str) -> str | None:
        """The command ``name`` stands for: itself, an alias's target or a synonym's."""
        listed = self.list_commands(ctx)
        if name in listed:
            return name
        target = self.aliases.get(name)
        if target is not None:
            return target
        for synonym in VERB_SYNONYMS.get(name, ()):
            if synonym in listed:
                return synonym
        return None

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = self.canonical_name(ctx, cmd_name)
        return super().get_command(ctx, target) if target is not None else None

    def resolve_command(self, ctx: click.Context, args: list[str]) -> Any:
        name = args[0] if args else ""
        if name and not name.startswith("-") and self.get_command(ctx, name) is None:
            ctx.fail(suggestion(ctx, name, self.list_commands(ctx), self.aliases))
        return super().resolve_command(ctx, args)


def group(name: str | None = None, **kwargs: Any) -> Callable[[Callable[..., Any]], CommandGroup]:
    """``@click.group`` with the shared grammar: ``@group(aliases={"ls": "list"})``."""
    decorator: Callable[[Callable[..., Any]], CommandGroup] = click.group(
        name, cls=CommandGroup, **kwargs
    )
    return decorator
