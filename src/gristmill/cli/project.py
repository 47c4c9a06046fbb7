"""``gristmill init``."""

from __future__ import annotations

from pathlib import Path

import click

from gristmill.cli._output import console, handles_errors


@click.command()
@click.argument("path", required=False, type=click.Path(file_okay=False))
@handles_errors
def init(path: str | None) -> None:
    """Create .gristmill/ in PATH (default: here): the embedded SQLite metadata store and the
    local artifact store of the default stack."""
    from gristmill.project import Project

    project = Project(Path(path or ".").resolve())
    created = project.init()
    store = project.store()
    verb = "Created" if created else "Already initialized:"
    console().print(f"{verb} [bold]{project.directory}[/]")
    console().print(f"  metadata store  {store.url}")
    console().print(f"  artifact store  {project.artifact_store().root}")
    console().print("  active stack    default (local orchestrator, local artifact store)")
