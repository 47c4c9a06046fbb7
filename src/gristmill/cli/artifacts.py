"""``gristmill artifacts list/show/load/lineage`` (``gristmill lineage`` is the same command)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from gristmill.cli._groups import group
from gristmill.cli._output import (
    DISPLAY_CHARS,
    console,
    escape,
    handles_errors,
    json_option,
    print_json,
    size,
    table,
    type_label,
    when,
    write_text,
)

if TYPE_CHECKING:
    from gristmill.client import ArtifactVersion


def _client() -> Any:
    from gristmill.client import Client

    return Client()


@group()
def artifacts() -> None:
    """List, inspect and load artifact versions; show their lineage."""


@artifacts.command("list")
@click.option("--name", help="Only versions of this artifact.")
@click.option("--run", help="Only versions produced in this run.")
@click.option("--limit", default=50, show_default=True)
@click.option("--offset", default=0)
@json_option
@handles_errors
def list_artifacts(
    name: str | None, run: str | None, limit: int, offset: int, as_json: bool
) -> None:
    """Artifact versions, newest first."""
    found = _client().list_artifact_versions(name=name, run=run, limit=limit, offset=offset)
    if as_json:
        print_json([av.to_dict() for av in found])
        return
    listing = table("artifact", "type", "materializer", "size", "created", "id")
    for av in found:
        listing.add_row(
            f"{escape(av.name, lines=False)}:{av.version}",
            escape(type_label(av.data_type), lines=False),
            escape(av.materializer, lines=False),
            size(av.size),
            when(av.created_at),
            escape(av.id[:12]),
        )
    console().print(listing)


@artifacts.command("show")
@click.argument("ref")
@json_option
@handles_errors
def show_artifact(ref: str, as_json: bool) -> None:
    """One artifact version (id, NAME or NAME:VERSION): where it is, what made it, its metadata."""
    av = _client().get_artifact_version(ref)
    producer = av.producer
    same = av.same_content()
    if as_json:
        data = av.to_dict()
        data["producer"] = producer.to_dict() if producer else None
        data["same_content_as"] = [f"{v.name}:{v.version}" for v in same]
        print_json(data)
        return
    out = console()
    out.print(f"[bold]{escape(av.name, lines=False)}:{av.version}[/]  [dim]id {escape(av.id)}[/]")
    rows = [
        ("type", _full_type(av.data_type)),
        ("materializer", av.materializer),
        ("size", size(av.size)),
        ("content hash", av.content_hash),
        ("uri", av.uri),
        ("created", when(av.created_at)),
        ("produced by", f"step '{producer.name}' of run {producer.run.name}" if producer else "-"),
        ("same content", _same_content(same)),
        ("preview", av.preview or "-"),
    ]
    for key, value in rows:
        out.print(f"  [bold]{key:<13}[/] {escape(value, lines=False, limit=DISPLAY_CHARS)}")
    metadata = {k: v for k, v in av.metadata.items() if k != "visualization"}
    if metadata:
        out.print("  [bold]metadata[/]")
        for key, value in metadata.items():
            out.print(
                f"    {escape(key, lines=False)} = {escape(value, lines=False, limit=DISPLAY_CHARS)}"
            )
    visualization = av.metadata.get("visualization")
    if isinstance(visualization, dict):
        out.print("  [bold]visualization[/]")
        _print_visualization(out, visualization)


def _print_visualization(out: Any, shown: dict[str, Any], depth: int = 0) -> None:
    """A stored visualization (see ``Materializer.visualize``) as Rich text and tables; every
    value is data from the store, so each one is escaped. Kinds this CLI cannot draw (images,
    HTML) are named, not shown."""
    from rich.padding import Padding

    kind = shown.get("kind")
    title = shown.get("title")
    indent = 4
    if title is not None:
        out.print(
            Padding(f"[bold]{escape(title, lines=False)}[/]", (0, 0, 0, indent), expand=False)
        )
    if kind == "sections" and depth < 4:
        for section in shown.get("sections") or []:
            if isinstance(section, dict):
                _print_visualization(out, section, depth + 1)
    elif kind == "fields":
        fields = shown.get("fields")
        for key, value in (fields or {}).items() if isinstance(fields, dict) else []:
            if isinstance(value, dict):
                out.print(Padding(f"{escape(key, lines=False)}:", (0, 0, 0, indent), expand=False))
                for inner, item in value.items():
                    out.print(Padding(_field(inner, item), (0, 0, 0, indent + 2), expand=False))
            else:
                out.print(Padding(_field(key, value), (0, 0, 0, indent), expand=False))
    elif kind == "table":
        columns = shown.get("columns") or []
        drawn = table(*(escape(c, lines=False, limit=60) for c in columns))
        for row in shown.get("rows") or []:
            cells = list(row)[: len(columns)] if isinstance(row, list) else []
            cells += [""] * (len(columns) - len(cells))
            drawn.add_row(*(escape(_cell(c), lines=False, limit=60) for c in cells))
        out.print(Padding(drawn, (0, 0, 0, indent), expand=False))
    elif kind in ("text", "markdown", "html"):
        text = escape(shown.get("text", ""), limit=DISPLAY_CHARS * 4)
        out.print(Padding(text, (0, 0, 0, indent), expand=False))
    else:
        out.print(
            Padding(
                f"[dim]({escape(kind, lines=False)}: see the dashboard)[/]",
                (0, 0, 0, indent),
                expand=False,
            )
        )


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return format(value, ".6g")
    return str(value)


def _field(key: Any, value: Any) -> str:
    shown = "-" if value is None else value
    return f"{escape(key, lines=False)} = {escape(shown, lines=False, limit=DISPLAY_CHARS)}"


def _same_content(same: list[ArtifactVersion], shown: int = 5) -> str:
    """The other versions holding these bytes (stored once, shared), the newest first."""
    if not same:
        return "-"
    names = ", ".join(f"{v.name}:{v.version}" for v in same[:shown])
    return names + (f" and {len(same) - shown} more" if len(same) > shown else "")


def _full_type(data_type: str) -> str:
    short = type_label(data_type)
    return short if data_type in (short, f"builtins.{short}") else f"{short} ({data_type})"


@artifacts.command("load")
@click.argument("ref")
@click.option(
    "--to",
    "target",
    type=click.Path(),
    help="Copy the stored file(s) here instead of printing the value.",
)
@handles_errors
def load_artifact(ref: str, target: str | None) -> None:
    """Print an artifact version's value, or copy its stored files (open formats: JSON, .npy,
    Parquet, ...) to a file or folder with --to."""
    av = _client().get_artifact_version(ref)
    if target is None:
        value = av.load()
        text = value if isinstance(value, str) else repr(value)
        write_text(text + "\n")
        return
    directory = av.local_directory()
    files = [p for p in directory.rglob("*") if p.is_file() and not p.name.startswith(".gristmill")]
    destination = Path(target)
    if len(files) == 1 and not destination.is_dir():
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(files[0], destination)
    else:
        for path in files:
            out = destination / path.relative_to(directory)
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, out)
    console(stderr=True).print(
        f"wrote {escape(str(destination))} ({size(av.size)}, {av.materializer})"
    )


@click.command()
@click.argument("ref")
@click.option(
    "--downstream", is_flag=True, help="What was made from it, instead of what it came from."
)
@json_option
@handles_errors
def lineage(ref: str, downstream: bool, as_json: bool) -> None:
    """The lineage of an artifact version (id, NAME or NAME:VERSION): by default the chain of
    steps and artifacts it was made from, back to the raw inputs."""
    from rich.tree import Tree

    graph = _client().lineage(ref, direction="downstream" if downstream else "upstream")
    if as_json:
        print_json(graph.to_dict())
        return
    versions = graph.graph.artifact_versions
    step_runs = graph.graph.step_runs

    def label(av_id: str) -> str:
        av = versions[av_id]
        return (
            f"[bold]{escape(av.artifact_name, lines=False)}:{av.version}[/] "
            f"[dim]{escape(type_label(av.data_type), lines=False)} {escape(av_id[:12])}[/]"
        )

    root = Tree(label(graph.graph.root))
    expanded: set[str] = set()

    def grow(node: Any, av_id: str) -> None:
        if av_id in expanded:
            return
        expanded.add(av_id)
        by_step: dict[str, list[str]] = {}
        for a, step_run, b in graph.graph.edges:
            near, far = (b, a) if not downstream else (a, b)
            if near == av_id:
                by_step.setdefault(step_run, []).append(far)
        for step_run_id, others in sorted(by_step.items()):
            step = step_runs[step_run_id]
            arrow = "made by" if not downstream else "read by"
            branch = node.add(
                f"{arrow} step [cyan]{escape(step.name, lines=False)}[/] "
                f"[dim]run {escape(step.run_id[:8])}[/]"
            )
            for other in sorted(set(others)):
                grow(branch.add(label(other)), other)

    grow(root, graph.graph.root)
    console().print(root)


artifacts.add_command(lineage, "lineage")
