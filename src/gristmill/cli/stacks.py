"""``gristmill component ...`` and ``gristmill stack ...``."""

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
from gristmill.errors import ConfigError


def _project() -> Any:
    from gristmill.project import find_project

    return find_project()


def parse_settings(pairs: tuple[str, ...], *, what: str = "setting") -> dict[str, Any]:
    """``key=value`` pairs; values are JSON where that parses (numbers, true, {...}), else text."""
    result: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"{what} {pair!r}: expected KEY=VALUE")
        try:
            result[key] = json.loads(raw)
        except ValueError:
            result[key] = raw
    return result


def _settings_text(config: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(config.items())) or "-"


# -- components ----------------------------------------------------------------------------------


@group()
def component() -> None:
    """Register and manage stack components (orchestrators, artifact stores, ...)."""


@component.command("register")
@click.argument("component_type", metavar="TYPE")
@click.argument("name")
@click.option(
    "--flavor", "-f", required=True, help="The implementation, e.g. local, s3, local_parallel."
)
@click.argument("settings", nargs=-1, metavar="[KEY=VALUE]...")
@handles_errors
def register_component(
    component_type: str, name: str, flavor: str, settings: tuple[str, ...]
) -> None:
    """Register a component of TYPE (orchestrator, artifact_store, step_operator, ...).
    Settings are checked against the flavor; credentials go in secrets:
    key='{{ secret.NAME.KEY }}'."""
    from gristmill.stacks.flavors import check_type, validate_config
    from gristmill.store import NotFoundError

    check_type(component_type)
    store = _project().store()
    try:
        store.get_component(component_type, name)
    except NotFoundError:
        pass
    else:
        raise ConfigError(
            f"a {component_type.replace('_', ' ')} named '{name}' exists: change it with "
            f"`gristmill component update {component_type} {name} KEY=VALUE`"
        )
    config = validate_config(component_type, flavor, parse_settings(settings))
    store.save_component(component_type, name, flavor, config)
    console().print(
        f"Registered {component_type.replace('_', ' ')} [bold]{escape(name)}[/] ({flavor})"
    )


@component.command("update")
@click.argument("component_type", metavar="TYPE")
@click.argument("name")
@click.argument("settings", nargs=-1, metavar="[KEY=VALUE]...")
@click.option("--unset", multiple=True, help="Remove a setting (repeatable).")
@handles_errors
def update_component(
    component_type: str, name: str, settings: tuple[str, ...], unset: tuple[str, ...]
) -> None:
    """Change settings of a component (stacks using it see the change)."""
    from gristmill.stacks.flavors import validate_config

    store = _project().store()
    record = store.get_component(component_type, name)
    config = {k: v for k, v in record.config.items() if k not in unset}
    config.update(parse_settings(settings))
    store.save_component(
        component_type, name, record.flavor, validate_config(component_type, record.flavor, config)
    )
    console().print(f"Updated {component_type.replace('_', ' ')} [bold]{escape(name)}[/]")


@component.command("list")
@click.option("--type", "component_type", help="Only this type.")
@json_option
@handles_errors
def list_components(component_type: str | None, as_json: bool) -> None:
    """Registered components, with the stacks that use them."""
    store = _project().store()
    records = store.list_components(component_type)
    used: dict[str, list[str]] = {}
    for stack in store.list_stacks():
        for member in stack.components.values():
            used.setdefault(member.id, []).append(stack.name)
    if as_json:
        print_json(
            [
                {
                    "type": r.type,
                    "name": r.name,
                    "flavor": r.flavor,
                    "settings": r.config,
                    "stacks": used.get(r.id, []),
                }
                for r in records
            ]
        )
        return
    rows = table("type", "name", "flavor", "settings", "stacks")
    for r in records:
        rows.add_row(
            r.type,
            r.name,
            r.flavor,
            escape(_settings_text(r.config)),
            ", ".join(used.get(r.id, [])) or "-",
        )
    console().print(rows)


@component.command("describe")
@click.argument("component_type", metavar="TYPE")
@click.argument("name")
@json_option
@handles_errors
def describe_component(component_type: str, name: str, as_json: bool) -> None:
    """A component's flavor and settings (secret references, never their values)."""
    from gristmill.stacks.flavors import describe_flavor

    record = _project().store().get_component(component_type, name)
    try:
        documented = describe_flavor(component_type, record.flavor)
    except Exception:  # the flavor's integration is not installed here: still show the record
        documented = []
    if as_json:
        print_json(
            {
                "type": record.type,
                "name": record.name,
                "flavor": record.flavor,
                "settings": record.config,
                "flavor_settings": documented,
            }
        )
        return
    out = console()
    out.print(f"[bold]{component_type.replace('_', ' ')} {escape(name)}[/]  flavor {record.flavor}")
    for key, value in sorted(record.config.items()):
        out.print(
            f"  {escape(key)} = {escape(json.dumps(value) if not isinstance(value, str) else value)}"
        )
    if documented:
        rows = table(
            "setting", "type", "default", "description", title=f"Settings of flavor {record.flavor}"
        )
        for row in documented:
            rows.add_row(
                row["name"],
                escape(row["type"]),
                "required" if row["required"] else escape(repr(row["default"])),
                escape(row["description"]),
            )
        out.print(rows)


@component.command("delete")
@click.argument("component_type", metavar="TYPE")
@click.argument("name")
@handles_errors
def delete_component(component_type: str, name: str) -> None:
    """Delete a component no stack uses."""
    _project().store().delete_component(component_type, name)
    console().print(f"Deleted {component_type.replace('_', ' ')} [bold]{escape(name)}[/]")


@component.command("flavors")
@click.argument("component_type", metavar="[TYPE]", required=False)
@json_option
@handles_errors
def flavors(component_type: str | None, as_json: bool) -> None:
    """The flavors installed for each component type, and what each needs."""
    from gristmill.errors import MissingIntegrationError
    from gristmill.stacks.flavors import COMPONENT_TYPES, check_type, flavor_class, flavor_names

    types = [check_type(component_type).name] if component_type else list(COMPONENT_TYPES)
    found = []
    for kind in types:
        for name in flavor_names(kind):
            try:
                flavor_class(kind, name)
                state = "ready"
            except MissingIntegrationError as exc:
                state = f"needs {exc.pip}"
            found.append({"type": kind, "flavor": name, "state": state})
    if as_json:
        print_json(found)
        return
    rows = table("type", "flavor", "state")
    for item in found:
        rows.add_row(item["type"], item["flavor"], escape(item["state"]))
    console().print(rows)


# -- stacks --------------------------------------------------------------------------------------


def _component_options(func: Any) -> Any:
    from gristmill.stacks.flavors import COMPONENT_TYPES

    for kind in reversed(list(COMPONENT_TYPES.values())):
        flags = (
            [kind.flag, f"--{kind.name.replace('_', '-')}"]
            if kind.flag
            else [f"--{kind.name.replace('_', '-')}"]
        )
        func = click.option(
            *flags, kind.name, help=f"The {kind.name.replace('_', ' ')} ({kind.description})."
        )(func)
    return func


@group()
def stack() -> None:
    """Register, pick and share stacks."""


@stack.command("register")
@click.argument("name")
@_component_options
@click.option("--set", "activate", is_flag=True, help="Make it the project's active stack.")
@handles_errors
def register_stack(name: str, activate: bool, **components: str | None) -> None:
    """Register stack NAME from registered components (-o orchestrator and -a artifact store
    are required)."""
    from gristmill.store import NotFoundError

    project = _project()
    store = project.store()
    try:
        store.get_stack(name)
    except NotFoundError:
        pass
    else:
        raise ConfigError(f"stack '{name}' exists: delete it first, or copy it to a new name")
    chosen = {k: v for k, v in components.items() if v}
    for required, flag in (("orchestrator", "-o"), ("artifact_store", "-a")):
        if required not in chosen:
            raise ConfigError(f"a stack needs an {required.replace('_', ' ')}: add {flag} NAME")
    store.save_stack(name, chosen)
    console().print(f"Registered stack [bold]{escape(name)}[/]")
    if activate:
        project.save_settings(active_stack=name)
        console().print(f"Active stack: [bold]{escape(name)}[/]")


@stack.command("list")
@json_option
@handles_errors
def list_stacks(as_json: bool) -> None:
    """Stacks, the active one marked."""
    from gristmill.stacks import load_stack

    project = _project()
    load_stack(project.store(), "default")  # always there
    active = project.stack_name
    records = project.store().list_stacks()
    if as_json:
        print_json(
            [
                {
                    "name": r.name,
                    "active": r.name == active,
                    "components": {
                        k: {"name": c.name, "flavor": c.flavor} for k, c in r.components.items()
                    },
                }
                for r in records
            ]
        )
        return
    rows = table("", "stack", "components")
    for r in records:
        members = ", ".join(f"{k}={c.name} ({c.flavor})" for k, c in r.components.items())
        rows.add_row("*" if r.name == active else "", r.name, escape(members))
    console().print(rows)


@stack.command("describe")
@click.argument("name", required=False)
@json_option
@handles_errors
def describe_stack(name: str | None, as_json: bool) -> None:
    """A stack's components and their settings (the active stack by default)."""
    project = _project()
    found = project.stack(name)
    if as_json:
        print_json({**found.to_dict(), "active": found.name == project.stack_name})
        return
    out = console()
    out.print(
        f"[bold]Stack {escape(found.name)}[/]{'  (active)' if found.name == project.stack_name else ''}"
    )
    rows = table("type", "component", "flavor", "settings")
    for kind, member in found.components.items():
        rows.add_row(kind, member.name, member.flavor, escape(_settings_text(member.config)))
    out.print(rows)


@stack.command("set")
@click.argument("name")
@handles_errors
def set_stack(name: str) -> None:
    """Make NAME the project's active stack (GRISTMILL_STACK overrides it for one command)."""
    project = _project()
    project.stack(name)
    project.save_settings(active_stack=name)
    console().print(f"Active stack: [bold]{escape(name)}[/]")


@stack.command("delete")
@click.argument("name")
@handles_errors
def delete_stack(name: str) -> None:
    """Delete a stack (not its components)."""
    from gristmill.stacks import DEFAULT_STACK

    project = _project()
    if name == DEFAULT_STACK:
        raise ConfigError("the default stack always exists; it cannot be deleted")
    if name == project.stack_name:
        raise ConfigError(f"stack '{name}' is active: `gristmill stack set default` first")
    project.store().delete_stack(name)
    console().print(f"Deleted stack [bold]{escape(name)}[/]")


@stack.command("copy")
@click.argument("source")
@click.argument("target")
@handles_errors
def copy_stack(source: str, target: str) -> None:
    """Register TARGET with the same components as SOURCE."""
    store = _project().store()
    from gristmill.stacks import load_stack
    from gristmill.store import NotFoundError

    members = load_stack(store, source).components
    try:
        store.get_stack(target)
    except NotFoundError:
        store.save_stack(target, {k: c.name for k, c in members.items()})
        console().print(f"Copied stack [bold]{escape(source)}[/] to [bold]{escape(target)}[/]")
        return
    raise ConfigError(f"stack '{target}' exists already")


@stack.command("export")
@click.argument("name")
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False), help="File to write (default: stdout)."
)
@handles_errors
def export_stack(name: str, output: str | None) -> None:
    """Write a stack and its components (flavors, settings with secret references) as YAML,
    to share or to import elsewhere."""
    from gristmill._yaml import dump_yaml

    found = _project().stack(name)
    document = {
        "name": found.name,
        "components": {
            kind: {"name": c.name, "flavor": c.flavor, "settings": c.config}
            for kind, c in found.components.items()
        },
    }
    write_output(dump_yaml(document), output)


@stack.command("import")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--name", help="Register it under this name instead.")
@handles_errors
def import_stack(path: str, name: str | None) -> None:
    """Register a stack exported with `gristmill stack export`, and any of its components
    that are not registered yet (same-named components must have the same settings)."""
    from gristmill._yaml import read_yaml
    from gristmill.stacks.flavors import check_type, validate_config
    from gristmill.store import NotFoundError

    document = read_yaml(path)
    data = document.data
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("components"), dict)
        or "name" not in data
    ):
        raise document.error(
            (), "a stack file has 'name' and 'components' (as `gristmill stack export` writes)"
        )
    store = _project().store()
    chosen = {}
    for kind, member in data["components"].items():
        where = ("components", kind)
        check_type(kind)
        if not isinstance(member, dict) or "name" not in member or "flavor" not in member:
            raise document.error(where, f"component '{kind}' needs 'name' and 'flavor'")
        settings = validate_config(kind, member["flavor"], member.get("settings") or {})
        try:
            existing = store.get_component(kind, member["name"])
        except NotFoundError:
            store.save_component(kind, member["name"], member["flavor"], settings)
        else:
            if existing.flavor != member["flavor"] or existing.config != settings:
                raise document.error(
                    where,
                    f"a {kind.replace('_', ' ')} named '{member['name']}' is registered with other settings: "
                    "rename it in the file, or update or delete the registered one",
                )
        chosen[kind] = member["name"]
    target = name or str(data["name"])
    try:
        store.get_stack(target)
    except NotFoundError:
        store.save_stack(target, chosen)
        console().print(f"Imported stack [bold]{escape(target)}[/]")
        return
    raise ConfigError(f"stack '{target}' exists already: import it --name OTHER")
