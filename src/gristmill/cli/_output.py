"""Shared output helpers: Rich for people, JSON for scripts, and one way to report errors."""

from __future__ import annotations

import functools
import io
import json
import os
import re
import sys
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")


@functools.cache
def console(stderr: bool = False) -> Any:
    from rich.console import Console

    out = Console(file=_Redacting(stderr), highlight=False, soft_wrap=False)  # type: ignore[arg-type]
    if not out.is_terminal and "COLUMNS" not in os.environ:
        out.width = 160  # piped output: do not squeeze tables into 80 columns
    return out


class _Redacting(io.TextIOBase):
    """Everything the CLI prints passes through here: secret values this process resolved
    (to build a component) are replaced by ``***``, whatever message carried them."""

    def __init__(self, stderr: bool) -> None:
        self.stderr = stderr

    @property
    def stream(self) -> Any:
        # Looked up on every write: the streams may be replaced (a test runner does it).
        return sys.stderr if self.stderr else sys.stdout

    def write(self, text: str) -> int:
        self.stream.write(redacted(text))
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return bool(self.stream.isatty())

    def fileno(self) -> int:
        return int(self.stream.fileno())

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return str(getattr(self.stream, "encoding", "utf-8"))


def redacted(text: str) -> str:
    module = sys.modules.get("gristmill.stacks.secrets")
    return module.redact(text) if module is not None else text


def write_output(text: str, output: str | None) -> None:
    """Write to the file ``output`` (saying so on stderr), or to stdout when it is None."""
    if output is None:
        click.echo(redacted(text), nl=False)
        return
    from pathlib import Path

    Path(output).write_text(text, encoding="utf-8")
    console(stderr=True).print(f"wrote {escape(output)}")


def print_json(data: Any) -> None:
    click.echo(redacted(json.dumps(data, indent=2, default=str, sort_keys=False)))


def handles_errors(func: F) -> F:
    """Turn gristmill errors into a red one-line message and exit status 1 (2 for usage)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from gristmill.errors import ConfigError, GristmillError, PipelineDefinitionError

        try:
            return func(*args, **kwargs)
        except (PipelineDefinitionError, ConfigError) as exc:
            console(stderr=True).print(f"[bold red]error:[/] {escape(str(exc))}")
            sys.exit(2)
        except GristmillError as exc:
            console(stderr=True).print(f"[bold red]error:[/] {escape(str(exc))}")
            sys.exit(1)
        except (OSError, RuntimeError, ValueError, TypeError, LookupError) as exc:
            if os.environ.get("GRISTMILL_DEBUG"):
                raise
            console(stderr=True).print(
                f"[bold red]error:[/] {type(exc).__name__}: {escape(str(exc))}\n"
                "[dim](unexpected: GRISTMILL_DEBUG=1 shows the traceback; please report it)[/]"
            )
            sys.exit(1)

    return wrapper  # type: ignore[return-value]


# C0 controls but tab and newline, DEL, and C1 controls (0x9b is a one-byte CSI on some
# terminals): what could move the cursor, recolour or retitle the terminal, or hide text.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_CONTROL_AND_LINES = re.compile(r"[\x00-\x1f\x7f-\x9f]")
DISPLAY_CHARS = 500


def clean(text: str, *, lines: bool = True) -> str:
    """``text`` without control characters (escape sequences lose their ESC and show as
    text); tabs and newlines are kept when ``lines``, else they become spaces."""
    if lines:
        return _CONTROL.sub("", text)
    return _CONTROL.sub("", text.replace("\n", " ").replace("\t", " ").replace("\r", " "))


def escape(text: object, *, lines: bool = True, limit: int | None = None) -> str:
    """A user-controlled string (a name, value, error, preview: anything read from the store)
    made safe to print through Rich: no control characters, and square brackets that Rich
    prints as themselves instead of reading them as markup (``[/bold]``, ``[link=...]``).
    ``limit`` truncates long values for display."""
    from rich.markup import escape as rich_escape

    text = clean(str(text), lines=lines)
    if limit is not None:
        text = shorten(text, limit)
    return str(rich_escape(text))


def shorten(text: str, limit: int = DISPLAY_CHARS) -> str:
    """At most ``limit`` characters, saying how much was left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit:,} more characters)"


def write_text(text: str) -> None:
    """Write stored text (logs, a value) to stdout as it is when piped, and without control
    characters when stdout is a terminal, which would act on them."""
    stream = sys.stdout
    if stream.isatty():
        text = clean(text)
    stream.write(redacted(text))


def table(*columns: str, title: str | None = None) -> Any:
    from rich.table import Table

    return Table(*columns, title=title, title_justify="left", header_style="bold")


STATUS_STYLE = {
    "completed": "green",
    "cached": "cyan",
    "failed": "bold red",
    "running": "yellow",
    "pending": "dim",
    "stopped": "magenta",
    "submitted": "blue",
    "stopping": "magenta",
}


def status_text(status: str) -> str:
    return f"[{STATUS_STYLE.get(status, 'white')}]{escape(status, lines=False)}[/]"


def type_label(data_type: str) -> str:
    """How every listing shows a recorded type: the class name (``dict``, ``DataFrame``,
    ``ndarray``), whatever module defines it; ``artifacts show`` adds the full name."""
    return data_type.rpartition(".")[2] or data_type


def when(moment: datetime | None) -> str:
    if moment is None:
        return "-"
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def seconds(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 120:
        return f"{value:.2f} s"
    return f"{value / 60:.1f} min"


def size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def now_utc() -> datetime:
    return datetime.now(timezone.utc)
